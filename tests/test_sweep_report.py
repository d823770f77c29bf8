"""flatland report: interval estimators that cover, the verdict rule, and the eLife claims on known tables."""
import math

import numpy as np
import pandas as pd
import pytest

from flatland import median_ci, paper_verdict, pearson_ci, wilson
from flatland.cli import main
from flatland.sweep_report import report
from flatland.sweep_stats import INCONCLUSIVE, NOT, PARTLY, REPRODUCED, UNMEASURED
from flatland.sweep_table import write_table
from flatland_plugins.relu.sweep_claims import section


def test_wilson_matches_its_closed_form_and_stays_in_0_1():
    p, lo, hi = wilson(9, 10)
    assert p == 0.9 and lo == pytest.approx(0.5958, abs=1e-4) and hi == pytest.approx(0.9821, abs=1e-4)
    assert wilson(0, 5)[1] == 0.0 and wilson(5, 5)[2] == 1.0
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_wilson_coverage_computed_exactly_is_near_its_level():
    """Exact coverage Σ_k Binom(k; n, p)·[p ∈ CI(k)] over p = 0.05 … 0.95 at n = 40: Wilson's interval is
    known to oscillate around 95% (Brown, Cai & DasGupta 2001): mean ≥ 0.94 and every p ≥ 0.90."""
    from scipy import stats

    n = 40
    cover = []
    for p in np.linspace(0.05, 0.95, 91):
        pmf = stats.binom.pmf(np.arange(n + 1), n, p)
        cover.append(sum(w for k, w in enumerate(pmf) if wilson(k, n)[1] <= p <= wilson(k, n)[2]))
    assert np.mean(cover) >= 0.94 and min(cover) >= 0.90, (np.mean(cover), min(cover))


@pytest.mark.parametrize("n", [2, 5])
def test_too_few_runs_have_no_median_interval(n):
    """[min, max] of n runs covers the median with probability 1 − 2·½ⁿ (50% for 2, 94% for 5): it was
    reported as the 95% interval."""
    med, lo, hi = median_ci(np.arange(n, dtype=float))
    assert med == (n - 1) / 2 and math.isnan(lo) and math.isnan(hi)


@pytest.mark.parametrize("n", [6, 9, 40, 101])
def test_median_interval_covers_at_least_its_level_exactly(n):
    """Distribution-free: P(x_(j) ≤ m ≤ x_(n+1−j)) = P(j ≤ Binomial(n, ½) ≤ n − j); checked exactly, and on
    2,000 exponential samples (binomial s.e. 0.005; tolerance 3 s.e.)."""
    from scipy import stats

    x = np.arange(n, dtype=float)
    lo, hi = median_ci(x)[1:]
    j = int(lo) + 1                       # 1-based rank of the lower bound
    exact = 1 - 2 * stats.binom.cdf(j - 1, n, 0.5) if hi == n - j else None
    assert exact is not None and exact >= 0.95
    rng = np.random.default_rng(n)
    hits = sum(median_ci(s)[1] <= math.log(2) <= median_ci(s)[2] for s in rng.exponential(size=(2000, n)))
    assert hits / 2000 >= min(exact, 0.95) - 3 * 0.005


def test_pearson_interval_covers_about_its_level():
    """Fisher-z interval of r: 2,000 bivariate normal samples of 30 at ρ = 0.6 (s.e. 0.005; tolerance 3 s.e.)."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(2000):
        a = rng.normal(size=30)
        r_lo, r_hi = pearson_ci(a, 0.6 * a + 0.8 * rng.normal(size=30))[1:3]
        hits += r_lo <= 0.6 <= r_hi
    assert abs(hits / 2000 - 0.95) <= 3 * 0.005


def test_the_verdict_rule():
    pos = lambda v: v > 0  # noqa: E731
    assert paper_verdict(0.9, 0.8, 0.95, 10, pos, tol=0.1) == REPRODUCED
    assert paper_verdict(0.9, 0.5, 0.95, 10, pos, tol=0.1) == INCONCLUSIVE      # inside, but too wide to tell
    assert paper_verdict(0.05, 0.03, 0.1, 10, pos, tol=0.3, log=True) == REPRODUCED    # half-width 0.26 dex
    assert paper_verdict(0.05, 0.01, 0.1, 10, pos, tol=0.3, log=True) == INCONCLUSIVE  # half-width 0.5 dex
    assert paper_verdict(0.9, 0.2, 0.5, 10, pos, tol=0.1) == PARTLY
    assert paper_verdict(0.9, -0.2, 0.5, 10, pos, tol=0.1) == NOT
    assert paper_verdict(0.9, 0.8, 0.95, 2, pos, tol=0.1) == UNMEASURED


def _elife_table(n=40, seed=0):
    """A synthetic sweep table whose answers are known: SGD sparsifies in 3/4 of its runs, Adam in all."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        learner = ("gd", "adam")[i % 2]
        noise = "gradient" if learner == "adam" or i % 4 == 0 else "uniform-label"
        sigma = float(np.exp(rng.uniform(np.log(0.01), np.log(0.1))))
        sparsifies = learner == "adam" or i % 8 != 2
        au0, au = 0.98, (0.5 if sparsifies else 0.98)
        rows.append({"point": i, "status": "done", "learner.name": learner, "noise.name": noise,
                     "noise.sigma": sigma if noise == "gradient" else math.nan,
                     "initial.active_units": au0, "final.active_units": au,
                     "initial.active_fraction": 0.5, "final.active_fraction": 0.5 * (0.1 if sparsifies else 0.9),
                     "timescale.ok": True, "timescale.r2": 0.3 if i % 6 == 0 else 0.95,
                     # a poor fit (R² 0.3) gets a rate unrelated to σ: the rate claims must leave it out
                     "timescale.log10_rate": rng.uniform(-8, -3) if i % 6 == 0 else -5.5 + 2 * np.log10(sigma) + 2,
                     "hessian.final_nonzero_fraction": 0.4 * au})
    rows.append({"point": n, "status": "failed", "reason": "RuntimeError: boom", "learner.name": "gd",
                 "noise.name": "gradient"})
    return pd.DataFrame(rows)


def test_elife_claims_compute_what_they_say(tmp_path):
    t = _elife_table()
    sec = section(t, tmp_path)
    got = {c.claim: c for c in sec.claims}
    sgd = got["… SGD"]
    done_gd = t[(t.status == "done") & (t["learner.name"] == "gd")]
    k = int((done_gd["final.active_units"] < done_gd["initial.active_units"]).sum())
    assert (sgd.n, sgd.estimate) == (len(done_gd), k / len(done_gd))
    assert got["… Adam"].estimate == 1.0 and got["… Adam"].verdict == REPRODUCED   # 0.978 inside [0.84, 1]
    assert got["median final/initial active fraction, Adam"].estimate == pytest.approx(0.1)
    assert got["median final/initial active fraction, Adam"].verdict == PARTLY          # 0.06 outside, below 1
    corr = got["corr(log update-noise σ, log decay rate), SGD"]
    good_upd = done_gd[(done_gd["noise.name"] == "gradient") & (done_gd["timescale.r2"] >= 0.8)]
    assert corr.estimate == pytest.approx(1.0) and corr.n == len(good_upd) < (done_gd["noise.name"] == "gradient").sum()
    assert got["corr(nonzero-Hessian-eigenvalue fraction, active-unit fraction), last step"].estimate \
        == pytest.approx(1.0)
    assert all(p.exists() and len(caption) > 40 for p, caption in sec.figures)
    assert section(t.drop(columns=["final.active_units"]), tmp_path) is None   # not a ReLU sweep


def test_report_writes_markdown_claims_and_figures(tmp_path, capsys):
    t = _elife_table()
    write_table(t.to_dict("records"), tmp_path / "table.parquet")
    res = report(tmp_path)
    md = res["report"].read_text()
    assert "41 runs: 40 done, 1 failed" in md and "point 40 failed: RuntimeError: boom" in md
    assert "| active_units | adam + gradient | 20 | 1 [0.839, 1] |" in md
    assert "The eLife sweep's claims" in md and (tmp_path / "claims.json").exists()
    captions = (tmp_path / "figures" / "README.md").read_text()
    assert all(f"`{p.name}` — " in captions for p in res["figures"]) and "no caption given" not in captions
    assert main(["report", str(tmp_path)]) == 0
    assert "paper 0.907" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "holds no sweep table" in capsys.readouterr().err


def test_a_figure_without_labelled_points_draws_no_legend_and_no_warning():
    """A sweep with no timescale fits left the SGD panel without labelled points: matplotlib warned in report."""
    import warnings

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from flatland_plugins.relu.sweep_claims import _legend

    fig, ax = plt.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _legend(ax, fontsize=8)
        assert ax.get_legend() is None
        ax.plot([0, 1], [0, 1], label="gd")
        _legend(ax, fontsize=8)
    assert ax.get_legend() is not None
    plt.close(fig)


def test_report_names_composed_mechanisms_as_infer_does(tmp_path):
    """A composed noise model is stored as its JSON list: the report printed `gd + ["label", "minibatch"]`
    where `flatland infer` says `gd + label + minibatch` (one labelling rule: ``mechanism_of``)."""
    rows = [{"point": i, "status": "done", "learner.name": "gd", "noise.name": noise, "seed": i,
             "initial.loss": 1.0, "final.loss": 0.5}
            for i, noise in enumerate(['["label", "minibatch"]'] * 2 + ["none"] * 2)]
    write_table(rows, tmp_path / "table.parquet")
    md = report(tmp_path)["report"].read_text()
    assert "| gd + label + minibatch | 2 | 2 |" in md and "| gd | 2 | 2 |" in md, md
    assert "[" not in md.split("## Start")[0].split("| mechanism |")[1], md


def test_the_papers_claims_leave_out_a_plugins_learner(tmp_path):
    """A plugin audit's sweep had 2 of its 4 runs from a third-party learner, and the "(all)" claims and the
    Hessian correlation counted them as the paper's."""
    t = _elife_table()
    mine = t[t.status == "done"].head(6).assign(**{"learner.name": "my-langevin", "final.active_units": 0.98,
                                                   "hessian.final_nonzero_fraction": 0.1})
    got = {c.claim: c for c in section(pd.concat([t, mine], ignore_index=True), tmp_path).claims}
    want = {c.claim: c for c in section(t, tmp_path).claims}
    for claim in ("runs ending with fewer active units (all)",
                  "corr(nonzero-Hessian-eigenvalue fraction, active-unit fraction), last step"):
        assert (got[claim].n, got[claim].estimate) == (want[claim].n, want[claim].estimate)
