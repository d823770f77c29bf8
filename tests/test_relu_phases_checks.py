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
    """A fit 10·e^(−t/500) onto 0.05 stays within ×2 of its level over the following decade from t ≈ 2,650
    (10·e^(−t/500) = 0.05).
    One logged point that dips onto the plateau at t = 1,000 (a raw-value rule starts the plateau there) and
    one spike ×5 after it (Adam's) do not move the start."""
    t = np.arange(100, 40_001, 100.0)
    loss = 0.05 + 10 * np.exp(-t / 500)
    clean = loss_plateau(t, loss)
    assert clean["reached"] and clean["level"] == pytest.approx(0.05, rel=1e-6)
    assert 2600 <= t[clean["index"]] <= 2800
    bumpy = loss.copy()
    bumpy[np.searchsorted(t, 1000)] = 0.05
    bumpy[np.searchsorted(t, 20_000)] = 0.25
    got = loss_plateau(t, bumpy)
    assert got["index"] == clean["index"] and got["reached"]


def test_the_plateau_excludes_an_excursion_and_follows_a_loss_rising_to_a_floor():
    """Flat at 0.05, then ×3 for 5,000 steps (the fit breaks) before settling back: the plateau starts only
    after the excursion (where the level, a median over a quarter decade, comes back: 14,400), and it is
    not reached in a run that ends before a decade on it (at 40,000); run to 200,000 it is. A loss that
    rises ×3 to a noise floor is on it from where the rise slows."""
    t = np.arange(100, 40_001, 100.0)
    loss = np.full(t.size, 0.05)
    loss[(t > 10_000) & (t < 15_000)] = 0.15
    got = loss_plateau(t, loss)
    assert not got["reached"] and t[got["index"]] >= 14_000
    long_t = np.arange(100, 200_001, 100.0)
    got = loss_plateau(long_t, np.where((long_t > 10_000) & (long_t < 15_000), 0.15, 0.05))
    assert got["reached"] and long_t[got["index"]] >= 14_000
    rising = 0.06 - 0.04 * np.exp(-t / 2000)
    got = loss_plateau(t, rising)
    assert got["reached"] and t[got["index"]] < 2000
    assert not loss_plateau(t, np.where(t > 39_000, np.inf, loss))["reached"]


def test_the_plateau_of_a_power_law_decay_does_not_move_with_the_run_length():
    """A noise-free loss approaching zero as t^−a has no level to anchor to. Falling ×2 a decade (a = 0.3,
    GD's and the adaptive learners' rate on the relu suite's net) it is on its plateau from the first
    logged step, and falling ×6.3 a decade (a = 0.8) nowhere, at every run length; a fit onto the slow decay
    settles where the fit is done. The rule it replaced (within ×1.5 of the end value) put the start at a
    fixed fraction of the run: 5,500 / 10,500 / 18,500 for RMSprop's runs of 2×10⁴ / 6×10⁴ / 3×10⁵ steps."""
    for length in (20_000, 60_000, 300_000):
        t = np.arange(100, length + 1, 100.0)
        slow, fast = loss_plateau(t, 0.1 * t ** -0.3), loss_plateau(t, 0.1 * t ** -0.8)
        assert slow["reached"] and slow["index"] == 0, (length, slow)
        assert not fast["reached"], (length, fast)
        fitted = loss_plateau(t, 0.1 * t ** -0.3 + 5 * np.exp(-t / 100))  # a fit, then the slow decay
        assert fitted["reached"] and 500 <= t[fitted["index"]] <= 900, (length, t[fitted["index"]])


def test_phase_labels_and_checks_share_the_plateau_rule():
    """One rule: the phase labels' convergence step and the relu checks' t_p are loss_plateau's index (the
    checks used their own, raw-value rule until 2026-12-05)."""
    from flatland_plugins.relu.checks import _plateau
    rng = np.random.default_rng(4)
    t = np.arange(100, 30_001, 100.0)
    seeds = (0.02 + 3 * np.exp(-t / 800)) * np.exp(0.3 * rng.standard_normal((8, t.size)))
    seeds[:, 10] = 0.02  # one logged point on the plateau during the fit: a raw-value rule would start there
    want = loss_plateau(t, seeds.mean(0))
    ip, level, reached, learned = _plateau(t, {"loss_norm": seeds})
    assert (ip, level, reached, learned) == (want["index"], want["level"], want["reached"], True)
    assert t[ip] > t[10]
    ph = label_phases(t, seeds.mean(0), np.full(t.size, 0.5))
    assert ph["converged_step"] == t[want["index"]] and ph["loss_on_plateau"] == want["reached"]
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


@pytest.mark.slow
def test_relu_suite_passes():
    reg = flatland.assemble(strict=True).registry
    failed = []
    for n in reg.names("checks"):
        c = reg.create("checks", n)
        if c.suite != "relu":
            continue
        for r in c.run(flatland.CheckContext(seed=0)):
            if not r.passed:
                failed.append((r.name, r.measured, r.stderr, r.tolerance, r.details))
    assert not failed, failed


def test_an_adaptive_learners_sparsification_is_judged_net_of_the_gd_control(monkeypatch):
    """Synthetic records: the treated run's active fraction falls by 45% from its plateau, the GD control's by
    30% over the same steps: the net 0.15 is below the rule's 0.25, so the row fails (it passes without the
    subtraction, which a mutation audit removed unnoticed: the real controls fall by 0.001–0.03)."""
    import types

    from flatland_plugins.relu import checks

    S, n = 8, 150  # the loss settles at step 1,000 and stays a decade and more
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
    loss[:] = 0.5 * (steps / 100.0) ** -0.8  # still fitting: ×6 a decade, never on a plateau
    row = checks._check_adaptive("adam", "Adam")(types.SimpleNamespace(seed=0))[0]
    assert not row.passed and not row.details["loss_on_plateau"] and "plateau" in row.details["verdict"], row


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
