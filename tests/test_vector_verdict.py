"""Verdicts on the whole drift vector, measured as the projected point's step (#11 item 3).

Regression: the verdict looked only along the mean predicted direction and
reported, but never tested, the part across it; and on a curved Γ the
prediction lacked the normal motion n_curv of the projected point, so the
measured step had an untested perpendicular part of order |n_curv|/|v|.
"""
import numpy as np

import flatland
from flatland import drift_ratio


def test_a_perpendicular_error_fails_the_verdict():
    """Along u the ratio is exactly 1; across u the measurement is off by 10% of |p|: must fail."""
    rng = np.random.default_rng(0)
    n = 4000
    p = np.tile([-1.0, 0.0], (n, 1))
    m = p + np.array([0.0, 0.10]) + 0.01 * rng.standard_normal((n, 2))
    row = drift_ratio("t", m, p, tol=0.02, estimator="test")
    assert abs(row.ratio - 1) < 3 * row.ratio_stderr + 1e-3
    assert row.details["across_fraction"] > 0.09
    assert not row.passed and "across" in row.details["verdict"]
    ok = drift_ratio("t", p + 0.01 * rng.standard_normal((n, 2)), p, tol=0.02, estimator="test")
    assert ok.passed, ok.details["verdict"]


def test_an_imprecise_ratio_does_not_hide_a_perpendicular_error():
    """Along u too noisy to judge, across u off by 10%: the verdict says both (it said only "inconclusive")."""
    rng = np.random.default_rng(1)
    n = 4000
    p = np.tile([-1.0, 0.0], (n, 1))
    m = p + np.array([0.0, 0.10]) + np.array([3.0, 0.01]) * rng.standard_normal((n, 2))
    why = drift_ratio("t", m, p, tol=0.02, estimator="test").details["verdict"]
    assert why.startswith("along the predicted direction: inconclusive") and "; across it: off by" in why, why


def test_table_reads_along_the_predicted_axis_with_its_sign():
    """A drift toward −x is shown negative, predicted and measured on the same axis."""
    n = 100
    p = np.tile([-2.0, 0.5], (n, 1))
    row = drift_ratio("t", 1.01 * p, p, tol=0.02, estimator="test")
    axis = np.asarray(row.details["axis"])
    assert axis[0] > 0 and row.predicted < 0
    assert np.isclose(row.predicted, p[0] @ axis) and np.isclose(row.measured, 1.01 * row.predicted)


def test_projected_step_on_a_curved_manifold_needs_n_curv():
    """Update noise on ½(xy − 1)² at (2, 0.5): E[ΔΦ|θ] matches v + n_curv as a whole vector (2%),
    while against the tangent drift v alone its part across v is ≈ |n_curv|/|v| ≈ 0.5 and fails."""
    lab = flatland.Lab()
    loss, noise, gd = (lab.component("losses", "hyperbola"), lab.component("noise", "update"),
                       lab.component("learners", "gd"))
    m = lab.measure(loss, noise, gd, {"learner": {"lr": 0.05}, "noise": {"sigma": 0.01}}, (2.0, 0.5), chains=3000,
                    steps=400, burn=100, chunk=100, seed=3, every=10)
    r = m.run
    whole = drift_ratio("whole", r.phi_rb[0], r.predicted_step()[0], tol=0.03, estimator="projected")
    assert whole.passed, whole.details["verdict"]
    tangent_only = drift_ratio("v", r.phi_rb[0], r.pred["drift_finite_eta"][0], tol=0.03, estimator="projected")
    assert not tangent_only.passed
    assert 0.3 < tangent_only.details["across_fraction"] < 0.8


def test_chains_that_left_the_point_are_inconclusive():
    """#11 item 4: measured = predicted along the trajectories, but the prediction there is 10% off the one at
    the requested point (the chains moved away during burn-in): the row must not pass."""
    rng = np.random.default_rng(2)
    p = np.tile([-1.0, 0.0], (2000, 1))
    m = p + 0.01 * rng.standard_normal(p.shape)
    row = drift_ratio("t", m, p, tol=0.02, estimator="test", at_point=[-1.1, 0.0])
    assert not row.passed and "elsewhere" in row.details["verdict"]
    assert row.details["prediction_shift_from_point"] == np.float64(0.1 / 1.1).item() or \
        abs(row.details["prediction_shift_from_point"] - 0.1 / 1.1) < 1e-12
    assert drift_ratio("t", m, p, tol=0.02, estimator="test", at_point=[-1.01, 0.0]).passed


def test_a_precise_mismatch_is_a_failure_even_where_the_chains_measured_elsewhere():
    """A noise model declaring too little covariance measured 0.85 ± 0.006 of the prediction along the same
    trajectories, yet the row read "inconclusive: ... the chains measured elsewhere", pointing at less noise.
    Measured and predicted are compared where the chains were, so a precise mismatch is a failure."""
    rng = np.random.default_rng(3)
    p = np.tile([-1.0, 0.0], (2000, 1))
    m = 0.85 * p + 0.01 * rng.standard_normal(p.shape)
    why = drift_ratio("t", m, p, tol=0.02, estimator="test", at_point=[-1.1, 0.0]).details["verdict"]
    assert why.startswith("along the predicted direction: off by") and "besides, the prediction where" in why, why
    imprecise = 0.85 * p + 3.0 * rng.standard_normal(p.shape)     # 3 s.e. ≈ 0.2: no verdict on the ratio
    why = drift_ratio("t", imprecise, p, tol=0.02, estimator="test", at_point=[-1.1, 0.0]).details["verdict"]
    assert why.startswith("inconclusive: the prediction where the chains were"), why
