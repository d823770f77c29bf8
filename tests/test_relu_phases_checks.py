"""Timescale fit and phase labels on synthetic curves; the relu check suite (slow)."""
import numpy as np
import pytest

import flatland
from flatland_plugins.relu.phases import fit_timescale, label_phases


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
