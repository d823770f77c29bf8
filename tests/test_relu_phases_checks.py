"""Timescale fit and phase labels on synthetic curves; the relu check suite (slow)."""
import jax
import numpy as np
import pytest

import flatland
from flatland_plugins.relu.phases import fit_timescale, label_phases, loss_plateau


def test_timescale_recovers_tau():
    t = np.arange(0, 50_000, 100.0)
    rng = np.random.default_rng(0)
    y = 0.2 + 0.7 * np.exp(-t / 8000) + 0.003 * rng.standard_normal(t.size)
    f = fit_timescale(t, y)
    assert f["ok"] and f["tau"] == pytest.approx(8000, rel=0.1) and f["r2"] > 0.95
    assert f["plateau"] == pytest.approx(0.2, abs=0.01)


def test_timescale_failure_is_reported():
    t = np.arange(0, 10_000, 100.0)
    flat = np.full(t.size, 0.9) + 1e-4 * np.random.default_rng(1).standard_normal(t.size)
    f = fit_timescale(t, flat)
    assert f["ok"] is False and "drop" in f["reason"] and "tau" not in f
    assert fit_timescale(t[:2], flat[:2])["ok"] is False


def test_three_phases():
    t = np.arange(100, 100_001, 100.0)
    loss = 0.05 + 10 * np.exp(-t / 500)
    au = 0.3 + 0.65 * np.exp(-np.maximum(t - 3000, 0) / 10_000)
    ph = label_phases(t, loss, au)
    assert ph["ok"]
    assert ph["fast_convergence"][1] < 5000
    a, b = ph["directed_drift"]
    assert a == ph["fast_convergence"][1] and 15_000 < b < 40_000
    assert ph["null_drift"][0] == b
    none = label_phases(t, loss, np.full(t.size, 0.9))
    assert none["directed_drift"] is None and "no directed drift" in none["note"]


def test_no_null_drift_is_claimed_while_the_curve_still_falls():
    """A run stopped at 1.5τ of its sparsification is still drifting: no null-drift phase; the same
    decay with noise and run to 12τ gets one."""
    rng = np.random.default_rng(2)
    t = np.arange(100, 30_001, 100.0)
    loss = 0.05 + 10 * np.exp(-t / 500)
    au = 0.3 + 0.65 * np.exp(-np.maximum(t - 3000, 0) / 18_000) + 0.005 * rng.standard_normal(t.size)
    ph = label_phases(t, loss, au)
    assert ph["null_drift"] is None and "still drifting" in ph["note"], ph
    assert ph["directed_drift"][1] == t[-1]
    long_t = np.arange(100, 220_001, 100.0)
    long_au = 0.3 + 0.65 * np.exp(-np.maximum(long_t - 3000, 0) / 18_000) + 0.005 * rng.standard_normal(long_t.size)
    ph = label_phases(long_t, 0.05 + 10 * np.exp(-long_t / 500), long_au)
    assert ph["null_drift"] is not None and abs(ph["end_change"]) < 3 * ph["end_change_se"] + 0.01


def test_the_loss_plateau_ignores_an_isolated_dip_and_spike():
    """A fit 10·e^(−t/500) onto 0.05 reaches ×1.5 of its level at t ≈ 3,000. One logged point that dips onto
    the plateau at t = 1,000 (a raw-value rule starts the plateau there) and one spike ×5 after it (Adam's)
    move neither the start nor "on"."""
    t = np.arange(100, 40_001, 100.0)
    loss = 0.05 + 10 * np.exp(-t / 500)
    clean = loss_plateau(loss)
    assert clean["reached"] and clean["on"] and clean["level"] == pytest.approx(0.05, rel=1e-6)
    assert 2900 <= t[clean["index"]] <= 3100
    bumpy = loss.copy()
    bumpy[np.searchsorted(t, 1000)] = 0.05
    bumpy[np.searchsorted(t, 20_000)] = 0.25
    got = loss_plateau(bumpy)
    assert got["index"] == clean["index"] and got["on"]


def test_a_loss_that_leaves_its_plateau_is_not_on_it():
    """Flat at 0.05, then a sustained rise ×3 (the fit breaks) before settling back: not "on"; a loss that
    rises to a noise floor ×3 above its start and stays there is on it from where it arrives."""
    t = np.arange(100, 40_001, 100.0)
    loss = np.full(t.size, 0.05)
    loss[(t > 10_000) & (t < 15_000)] = 0.15
    assert loss_plateau(loss)["reached"] and not loss_plateau(loss)["on"]
    rising = 0.06 - 0.04 * np.exp(-t / 2000)
    got = loss_plateau(rising)
    assert got["on"] and rising[got["index"]] >= 0.06 / 1.5 and t[got["index"]] < 2000


def test_phase_labels_and_checks_share_the_plateau_rule():
    """One rule: the phase labels' convergence step and the relu checks' t_p are loss_plateau's index (the
    checks used their own, raw-value rule until 2026-12-05)."""
    from flatland_plugins.relu.checks import _plateau
    rng = np.random.default_rng(4)
    t = np.arange(100, 30_001, 100.0)
    seeds = (0.02 + 3 * np.exp(-t / 800)) * np.exp(0.3 * rng.standard_normal((8, t.size)))
    seeds[:, 10] = 0.02  # one logged point on the plateau during the fit: a raw-value rule would start there
    want = loss_plateau(seeds.mean(0))
    ip, level, on, learned = _plateau({"loss_norm": seeds})
    assert (ip, level, on, learned) == (want["index"], want["level"], want["on"], True)
    ph = label_phases(t, seeds.mean(0), np.full(t.size, 0.5))
    assert ph["converged_step"] == t[want["index"]] and ph["loss_on_plateau"] == want["on"]
    assert label_phases(t, np.where(t > 20_000, np.nan, seeds.mean(0)), np.full(t.size, 0.5))["ok"] is False


@pytest.fixture(scope="module")
def small_probe_nets():
    """(ctx, params of 3 nets) of a width-12 corridor net with a 2,000-sample probe walk."""
    loss = flatland.assemble(strict=True).registry.create("losses", "corridor", n_hid=12, probe_samples=2000)
    return loss.extras["relu"], jax.vmap(loss.init)(jax.random.split(jax.random.key(3), 3))


def test_relu_checks_registered():
    reg = flatland.assemble(strict=True).registry
    names = [n for n in reg.names("checks") if n.startswith("relu-")]
    assert len(names) == 7
    for n in names:
        assert reg.create("checks", n).suite == "relu"


#: rows that fail under the stricter rules of #11 item 6, with the measured reason; the test below
#: asserts the reason still holds, so a change that makes them pass (or fail otherwise) is noticed
FINDINGS = {
    # RMSprop (PyTorch's defaults) collapses the active fraction (0.52 → 0.15) in its first 2·10³ steps, after
    # its fit, but its loss keeps falling ~×2 a decade, so the plateau rule's t_p lands after the collapse; from
    # there it falls 0.18 ± 0.02 (examples/recorded/rmsprop-plateau)
    "relu-rmsprop-sparsifies": lambda r: r.details["loss_on_plateau"] and r.measured < 0.25
    and r.details["t_plateau"] > 1000,
}


@pytest.mark.slow
def test_relu_suite_passes():
    reg = flatland.assemble(strict=True).registry
    failed, findings = [], {}
    for n in reg.names("checks"):
        c = reg.create("checks", n)
        if c.suite != "relu":
            continue
        for r in c.run(flatland.CheckContext(seed=0)):
            if r.name in FINDINGS:
                findings[r.name] = (not r.passed) and FINDINGS[r.name](r)
            elif not r.passed:
                failed.append((r.name, r.measured, r.stderr, r.tolerance, r.details))
    assert not failed, failed
    assert findings == {k: True for k in FINDINGS}, findings


def test_an_adaptive_learners_sparsification_is_judged_net_of_the_gd_control(monkeypatch):
    """Synthetic records: the treated run's active fraction falls by 45% from its plateau, the GD control's by
    30% over the same steps: the net 0.15 is below the rule's 0.25, so the row fails (it passes without the
    subtraction, which a mutation audit removed unnoticed: the real controls fall by 0.001–0.03)."""
    import types

    from flatland_plugins.relu import checks

    S, n = 8, 50
    steps = 100 * (np.arange(n) + 1)
    loss = np.tile(np.r_[np.linspace(1.0, 0.06, 10), np.full(n - 10, 0.05)], (S, 1))
    fall = lambda total: np.tile(np.r_[np.ones(10), np.linspace(1.0, 1 - total, n - 10)], (S, 1)) * 0.5  # noqa: E731
    runs = {"gd": fall(0.30), "adam": fall(0.45)}

    def condition(seed, name):
        return {"records": {"active_fraction": runs[name], "active_units": runs[name], "loss_norm": loss},
                "steps": steps, "diverged": -np.ones(S, int), "seconds": 0.0,
                "start": {"loss_norm": np.ones(S)}}

    monkeypatch.setattr(checks, "_condition", condition)
    row = checks._check_adaptive("adam", "Adam")(types.SimpleNamespace(seed=0))[0]
    assert row.measured == pytest.approx(0.15, abs=0.02) and not row.passed, row
    runs["gd"] = fall(0.0)
    assert checks._check_adaptive("adam", "Adam")(types.SimpleNamespace(seed=0))[0].passed


def test_the_si_row_is_judged_on_the_probe_si_net_of_the_gd_control():
    """Synthetic records: a probe SI rise that the GD control shows as well, seed by seed, is no rise (the row
    fails, with a standard error of 0 only if seeds are paired), one of 0.5 bits over a control's 0.04 is; the
    training samples' statistics are reported, never judged; a control of another length is refused."""
    from flatland_plugins.relu import checks

    rng = np.random.default_rng(0)
    S, n = 8, 40
    per_seed = rng.uniform(0.1, 0.5, S)[:, None]

    def cond(rise, train_corrected=-0.13, logs=n):
        ramp = np.linspace(0, 1, logs)
        rec = {"si_probe_corrected": 1.2 + rise * ramp + 0.0 * rng.standard_normal((S, logs)),
               "si_corrected": 0.45 + train_corrected * ramp + np.zeros((S, logs)), "si": 1.3 + ramp + np.zeros((S, logs))}
        return {"records": rec, "start": {k: v[:, 0] for k, v in rec.items()}}

    both = checks._si_row(cond(per_seed), cond(per_seed))
    assert not both.passed and abs(both.measured) < 1e-12 and both.stderr < 1e-12, both
    row = checks._si_row(cond(0.5), cond(0.04))
    assert row.passed and row.measured > 0.3, row
    assert row.details["delta_si_train_corrected"] < 0
    with pytest.raises(ValueError, match="as long as"):
        checks._si_row(cond(0.5), cond(0.04, logs=n - 10))


def test_a_pure_threshold_shift_reads_as_no_more_than_thresholding(small_probe_nets):
    """The SI row's diagnostic: end nets that are the start nets with every bias lowered by 0.4 give a
    threshold-matched start equal to the end, and a survivors' change equal to the per-unit change of the units
    active at both ends. The match is on a step function (the active fraction of 150 × 12 entries): the
    smallest shift reaching the end's fraction, not 0.4 itself, so the SIs agree to 0.01 bits, not exactly."""
    from flatland_plugins.relu import checks
    from flatland_plugins.relu.metrics import probe_unit_si_corrected

    ctx, start = small_probe_nets
    end = dict(start, b=start["b"] - 0.4)
    d = checks._si_diagnostics({"ctx": ctx, "start_params": start, "params": end})
    assert abs(d["end_minus_threshold_matched"]) < 0.01, d
    corr = [np.asarray(jax.vmap(lambda p: probe_unit_si_corrected(p, ctx))(q)) for q in (start, end)]
    both = np.isfinite(corr[0]) & np.isfinite(corr[1])
    by_hand = np.mean([np.mean((corr[1] - corr[0])[k][both[k]]) for k in range(len(both))])
    assert d["survivors_change"] == pytest.approx(by_hand) and d["survivors_change"] > 0
