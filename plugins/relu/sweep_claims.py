"""The eLife sweep's claims (Ratzon, Derdikman & Barak 2024) judged on a ``flatland sweep`` table of ReLU runs.

What: ``section(table, out)`` is the relu run extension's part of
``flatland report``. It takes the finished runs that logged ``active_units``
and ``active_fraction`` and puts each of the paper's sweep numbers beside
flatland's, with 95% intervals and the verdict rule of
:mod:`flatland.sweep_stats` (reproduced: the paper's value is inside an
interval no wider than the claim's tolerance; inconclusive: inside a wider
one; partly: outside, but the qualitative statement holds over the whole
interval; otherwise not reproduced). It draws four figures: the share of runs that
sparsify per mechanism, the final/initial active-fraction distributions per
learner, the decay rate of the active-unit fraction against the update-noise
scale (log–log), and the nonzero-Hessian-eigenvalue fraction against the
active-unit fraction.

The paper's numbers (from its 1,151-run sweep of 10⁶–10⁷ steps): 90.7% of runs
end with fewer active units (SGD 90.1%, Adam 97.8%, SED 98.0%), 99.7% with a
lower active fraction; median final/initial active fraction SGD 0.24, Adam
0.06, SED 0.47; SGD with update noise 0.038, with label noise 0.55;
corr(update-noise scale, log decay rate) = 0.92 with decay rates ~10⁻⁵·⁵ per
step; the fraction of nonzero Hessian eigenvalues tracks the active-unit
fraction, r = 0.95. Choices made here (the paper leaves them open): the
correlation with the noise scale is taken on log σ (the scales were drawn
log-uniformly) over SGD + update-noise runs whose timescale fit succeeded; the
Hessian correlation is across runs at their last step; every claim, the "(all)"
ones included, pools only runs of the paper's learners (SGD, Adam, SED): a
plugin's learner in the same sweep is drawn in the figures but left out of them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flatland import SweepSection, sweep_claim, sweep_fraction, sweep_median, pearson_ci

LEARNERS = {"gd": "SGD", "adam": "Adam", "sed": "SED"}
UPDATE, LABEL = "gradient", "uniform-label"
MOST = ("most runs (more than half)", lambda v: v > 0.5)
BELOW_ONE = ("the median is below 1 (the layer sparsifies)", lambda v: v < 1)
POSITIVE = ("r > 0", lambda v: v > 0)
#: tolerances (largest 95% half-width that can count as reproduced), fixed before the sweep was run
SHARE_TOL = dict(tol=0.1)                  # shares of runs: ±0.10
RATIO_TOL = dict(tol=0.3, log=True)        # median ratios: a factor 2 (0.3 dex) either way
CORR_TOL = dict(tol=0.15)                  # correlations: ±0.15
RATE_TOL = dict(tol=0.5)                   # log10 decay rate: ±0.5 dex (the paper says "~10⁻⁵·⁵")
#: a decay rate counts only when its exponential fit explains most of the drop: R² of the log-linear
#: fit at least this. Fixed after the first 59 runs (whose low-σ fits were poor, r = −0.46 with every
#: successful fit) and before the other 141 were looked at; the report states how many fits it leaves out.
MIN_FIT_R2 = 0.8


def _legend(ax, **kw):
    """A legend only where something is labelled (a sweep without fits drew none, and matplotlib warned)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def _col(t, name):
    return t[name].to_numpy(float) if name in t.columns else np.full(len(t), np.nan)


def _fitted(t):
    """Rows whose timescale fit succeeded with R² ≥ MIN_FIT_R2 (the rate claims use only these)."""
    if "timescale.ok" not in t.columns:
        return t.iloc[:0]
    ok = t["timescale.ok"].fillna(False).astype(bool).to_numpy() & (_col(t, "timescale.r2") >= MIN_FIT_R2)
    return t[ok]


def _share_lower(t, metric):
    a, b = _col(t, f"initial.{metric}"), _col(t, f"final.{metric}")
    ok = np.isfinite(a) & np.isfinite(b)
    return sweep_fraction(np.where(ok, b < a, np.nan))


def _ratio(t, metric="active_fraction"):
    a, b = _col(t, f"initial.{metric}"), _col(t, f"final.{metric}")
    return np.where(a > 0, b / np.where(a > 0, a, 1), np.nan)


def _claims(runs):
    # the paper's claims pool the paper's learners only: a plugin's learner in the same sweep is not theirs
    runs = runs[runs["learner.name"].isin(list(LEARNERS))]
    by = {k: runs[runs["learner.name"] == k] for k in LEARNERS}
    gd = by["gd"]
    upd, lab = gd[gd["noise.name"] == UPDATE], gd[gd["noise.name"] == LABEL]
    frac = "share of runs (Wilson interval)"
    med = "median over runs (order-statistic interval)"
    out = [sweep_claim("runs ending with fewer active units (all)", _share_lower(runs, "active_units"), 0.907,
                       frac, *MOST, **SHARE_TOL)]
    for k, paper in (("gd", 0.901), ("adam", 0.978), ("sed", 0.980)):
        out.append(sweep_claim(f"… {LEARNERS[k]}", _share_lower(by[k], "active_units"), paper, frac, *MOST,
                               **SHARE_TOL))
    out.append(sweep_claim("runs ending with a lower active fraction (all)", _share_lower(runs, "active_fraction"),
                           0.997, frac, *MOST, **SHARE_TOL))
    for k, paper in (("gd", 0.24), ("adam", 0.06), ("sed", 0.47)):
        out.append(sweep_claim(f"median final/initial active fraction, {LEARNERS[k]}", sweep_median(_ratio(by[k])),
                               paper, med, *BELOW_ONE, **RATIO_TOL))
    for name, t, paper in (("update", upd, 0.038), ("label", lab, 0.55)):
        out.append(sweep_claim(f"… SGD with {name} noise", sweep_median(_ratio(t)), paper, med, *BELOW_ONE,
                               **RATIO_TOL))
    fit = _fitted(upd)
    r = pearson_ci(np.log10(_col(fit, "noise.sigma")), _col(fit, "timescale.log10_rate"))
    out.append(sweep_claim("corr(log update-noise σ, log decay rate), SGD", r, 0.92,
                           f"Pearson r over runs with a timescale fit of R² ≥ {MIN_FIT_R2} (Fisher-z interval)",
                           *POSITIVE, **CORR_TOL))
    fitted = _fitted(runs)
    out.append(sweep_claim("log10 decay rate of the active-unit fraction (per step)",
                           sweep_median(_col(fitted, "timescale.log10_rate")), -5.5, med,
                           "between 10⁻⁷ and 10⁻⁴ per step", lambda v: -7 < v < -4, **RATE_TOL))
    r = pearson_ci(_col(runs, "hessian.final_nonzero_fraction"), _col(runs, "final.active_units"))
    out.append(sweep_claim("corr(nonzero-Hessian-eigenvalue fraction, active-unit fraction), last step",
                           r, 0.95, "Pearson r over runs (Fisher-z interval)", *POSITIVE, **CORR_TOL))
    return out


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _figures(runs, out: Path) -> list:
    plt = _plt()
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    paths = []
    mech = [(f"{LEARNERS.get(l, l)} + {n}", g) for (l, n), g in runs.groupby(["learner.name", "noise.name"])]

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for i, (name, g) in enumerate(mech):
        for j, (metric, c) in enumerate((("active_units", "C0"), ("active_fraction", "C1"))):
            p, lo, hi, n = _share_lower(g, metric)
            ax.errorbar(i + 0.15 * (2 * j - 1), p, yerr=[[p - lo], [hi - p]], fmt="o", color=c,
                        label=f"fewer {metric.replace('_', ' ')} at the end" if i == 0 else None)
    ax.set_xticks(range(len(mech)), [f"{m}\n(n={len(g)})" for m, g in mech], fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("share of runs (95% Wilson CI)")
    _legend(ax, fontsize=8, loc="lower right")
    ax.set_title("runs that sparsify, per mechanism", fontsize=10)
    fig.tight_layout()
    paths.append((figs / "sparsifying_share.png",
                  "share of each mechanism's finished runs that end with fewer active units (blue) and a "
                  "smaller active fraction (orange) than they started with; bars: 95% Wilson intervals."))
    fig.savefig(paths[-1][0], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for i, (name, g) in enumerate(mech):
        r = _ratio(g)
        r = r[np.isfinite(r) & (r > 0)]
        if r.size:
            ax.violinplot(np.log10(r), positions=[i], showmedians=True)
    ax.set_xticks(range(len(mech)), [m for m, _ in mech], fontsize=8)
    ax.axhline(0, color="0.5", ls="--", lw=0.8)
    ax.set_ylabel("log10 final / initial active fraction")
    ax.set_title("how much of the layer stays active (per run; bar = median)", fontsize=10)
    fig.tight_layout()
    paths.append((figs / "active_fraction_ratio.png",
                  "log10 of final / initial active fraction per run, one violin per mechanism (bar: median; "
                  "dashed: no change); below zero means the hidden layer sparsified."))
    fig.savefig(paths[-1][0], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    fit = _fitted(runs[runs["noise.name"] == UPDATE])
    for (l, g) in fit.groupby("learner.name"):
        axes[0].plot(np.log10(_col(g, "noise.sigma")), _col(g, "timescale.log10_rate"), "o", ms=4,
                     label=LEARNERS.get(l, l))
    gd = fit[fit["learner.name"] == "gd"]
    r = pearson_ci(np.log10(_col(gd, "noise.sigma")), _col(gd, "timescale.log10_rate"))
    axes[0].set_xlabel("log10 update-noise σ_g")
    axes[0].set_ylabel(f"log10 decay rate of active units (1/steps)\nfits with R² ≥ {MIN_FIT_R2}", fontsize=8)
    axes[0].set_title(f"SGD: r = {r[0]:.2f} [{r[1]:.2f}, {r[2]:.2f}], n = {r[3]} (paper 0.92)", fontsize=9)
    _legend(axes[0], fontsize=8)
    for (l, g) in runs.groupby("learner.name"):
        axes[1].plot(_col(g, "final.active_units"), _col(g, "hessian.final_nonzero_fraction"), "o", ms=4,
                     label=LEARNERS.get(l, l))
    r = pearson_ci(_col(runs, "hessian.final_nonzero_fraction"), _col(runs, "final.active_units"))
    axes[1].set_xlabel("fraction of active units (last step)")
    axes[1].set_ylabel("nonzero Hessian eigenvalues / P")
    axes[1].set_title(f"r = {r[0]:.2f} [{r[1]:.2f}, {r[2]:.2f}], n = {r[3]} (paper 0.95)", fontsize=9)
    _legend(axes[1], fontsize=8)
    fig.tight_layout()
    paths.append((figs / "rates_and_hessian.png",
                  f"left: log10 decay rate of the active units (exponential fits with R² ≥ {MIN_FIT_R2}) against "
                  "log10 update-noise σ, per learner; right: nonzero Hessian eigenvalues / P against the active "
                  "fraction at the last step; titles: Pearson r [95% CI], n, and the paper's value."))
    fig.savefig(paths[-1][0], dpi=120)
    plt.close(fig)
    return paths


def section(table, out: Path):
    """The eLife sweep section of ``flatland report`` (module doc), or None without ReLU runs."""
    need = {"final.active_units", "initial.active_units", "final.active_fraction", "learner.name", "noise.name"}
    if not need <= set(table.columns):
        return None
    runs = table[(table["status"] == "done") & np.isfinite(_col(table, "final.active_units"))]
    if runs.empty:
        return None
    n_ok = int(runs["timescale.ok"].fillna(False).astype(bool).sum()) if "timescale.ok" in runs.columns else 0
    notes = [f"{len(runs)} finished ReLU runs of {len(table)} in the table.",
             "Decay rate: 1/τ of the exponential fit to the active-unit fraction (shifted to its plateau, clipped "
             f"at 90% of the drop); the rate claims use only fits with R² ≥ {MIN_FIT_R2} "
             f"({len(_fitted(runs))} of {n_ok} successful fits; failed fits are runs with no drop).",
             "Nonzero Hessian eigenvalues: 1 − n_zero/P of the run's last hessian.csv row (method as configured; "
             "with the Gauss–Newton method the zero count is capped by its rank)."]
    return SweepSection("The eLife sweep's claims (Ratzon, Derdikman & Barak 2024)", _claims(runs),
                        _figures(runs, out), notes)
