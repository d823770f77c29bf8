"""The statistics under every verdict: the precision rule, the standard error of a mean and the s.e. of the
part of a drift across its predicted direction. A mutation audit changed each (3 s.e. → 1 s.e.; s.e. over n
instead of √n; the across s.e. from the smallest eigenvalue) and no test or check noticed."""
import math

import numpy as np
import pytest

from flatland import decisive
from flatland.estimators import mean_se, ratio_along


def test_a_verdict_needs_its_error_and_three_standard_errors_inside_the_tolerance():
    tol = 0.02
    assert decisive(0.0, 0.3 * tol, tol)[0]                                   # 3 × 0.3 = 0.9 of tol: decisive
    passed, why = decisive(0.0, 0.5 * tol, tol)                               # 3 × 0.5 = 1.5 of tol
    assert not passed and why.startswith("inconclusive: 3 s.e.")
    assert not decisive(1.01 * tol, 0.0, tol)[0] and decisive(0.99 * tol, 0.0, tol)[0]
    assert not decisive(float("nan"), 0.0, tol)[0]


def test_a_miss_outside_the_tolerance_by_more_than_three_standard_errors_is_a_fail_not_inconclusive():
    """0.74 ± 0.039 (a false preconditioner declaration, a README-only plugin author's audit) read
    "inconclusive: 3 s.e. = 0.117 exceeds the tolerance" and asked for 140× the chains. Outside the
    tolerance by more than 3 s.e. it is decided; inside that margin it stays inconclusive, and never passes."""
    tol = 0.02
    passed, why = decisive(0.7413 - 1, 0.0389, tol)
    assert not passed and why.startswith("off by -0.259 ± 0.039") and "inconclusive" not in why, why
    passed, why = decisive(0.12, 0.039, tol)            # 0.12 − 0.117 = 0.003 < tol: not decided
    assert not passed and why.startswith("inconclusive: 3 s.e."), why


def test_mean_se_is_the_standard_error_of_the_mean():
    """10⁴ standard normals: s.e. = 1/√n = 0.01; the sample s.d.'s own relative s.d. is 1/√(2n) = 0.7%, so
    3% is over 4 of them."""
    x = np.random.default_rng(0).standard_normal((10_000, 2))
    m, se = mean_se(x)
    np.testing.assert_allclose(se, 0.01, rtol=0.03)


def test_mean_se_covers_the_true_mean_at_its_level():
    """500 replicates of n = 200 with mean 3: |x̄ − 3| ≤ s.e. in 68.3% of them (binomial s.d. 2.1%, band ±3.1
    s.d.), and ≤ 3 s.e. in at least 99% (expected 99.7%)."""
    x = 3 + np.random.default_rng(1).standard_normal((500, 200))
    means, ses = zip(*(mean_se(row) for row in x))
    z = np.abs(np.asarray(means) - 3) / np.asarray(ses)
    assert 0.62 <= np.mean(z <= 1) <= 0.75, np.mean(z <= 1)
    assert np.mean(z <= 3) >= 0.99


def test_the_across_standard_error_is_that_of_the_worst_direction():
    """d = 3, prediction along x, paired differences with independent noise of s.d. 1 (y) and 4 (z) across it:
    the across s.e. is √(λ_max/n)/|p̄| = 4/√n/|p̄| (λ_max the larger across variance), within 10% (the s.d. of
    a square root of a variance estimate at n = 4,000 is ~1.1%)."""
    n, rng = 4000, np.random.default_rng(2)
    p = np.tile([2.0, 0.0, 0.0], (n, 1))
    m = p + rng.standard_normal((n, 3)) * [0.5, 1.0, 4.0]
    r = ratio_along(m, p)
    assert r["across_stderr"] == pytest.approx(4 / math.sqrt(n) / 2.0, rel=0.10)
    two = ratio_along(m[:, :2], p[:, :2])                # d = 2: one across direction, its s.e. is not 0
    assert two["across_stderr"] == pytest.approx(1 / math.sqrt(n) / 2.0, rel=0.10)


def _curved_steps(tangent_scale, n=4000, seed=0):
    """Per-chain steps on a curved Γ: drift 1e-6 along x (the tangent), normal motion n_curv 1e-5 along y;
    the measurement has its tangent part scaled by ``tangent_scale`` and small chain-to-chain noise."""
    rng = np.random.default_rng(seed)
    predicted = np.tile([1e-6, 1e-5, 0.0], (n, 1))
    measured = predicted * [tangent_scale, 1, 1] + 2e-8 * rng.standard_normal((n, 3))
    return measured, predicted


def test_a_tangent_drift_20_percent_off_under_a_large_normal_motion_fails():
    """The whole-vector rule alone passed it: the 20% tangent error is 2% of a step that n_curv dominates
    (an audit's 3-D valley, where the leading-order drift passed at ratio 1.0006 though its tangent part was 7% off)."""
    from flatland.verdicts import drift_ratio

    tangent = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    measured, predicted = _curved_steps(1.2)
    whole = drift_ratio("t", measured, predicted, tol=0.02, estimator="synthetic")
    assert whole.passed                                    # what the whole vector says
    row = drift_ratio("t", measured, predicted, tol=0.02, estimator="synthetic", tangent_basis=tangent)
    assert not row.passed and "along Γ" in row.details["verdict"]
    assert row.details["tangent_ratio"] == pytest.approx(1.2, abs=0.01)
    good = drift_ratio("t", *_curved_steps(1.0), tol=0.02, estimator="synthetic", tangent_basis=tangent)
    assert good.passed and good.details["tangent_ratio"] == pytest.approx(1.0, abs=0.01)
    assert "part along Γ" in good.tolerance


def test_chains_with_non_finite_steps_are_left_out_and_named_and_too_many_fail():
    """A value-only codim-2 valley gave NaN Rao–Blackwell steps for 78 of 16,384 chains (autodiff through the
    projection where ∇²L's eigenvalues cross); ratio_along then stopped `check` with an internal error."""
    from flatland.verdicts import MAX_DROPPED, drift_ratio

    measured, predicted = _curved_steps(1.0, n=1000)
    measured[:5] = np.nan                                   # 0.5%: left out, named
    row = drift_ratio("t", measured, predicted, tol=0.02, estimator="synthetic")
    assert row.passed and row.details["left_out_chains"] == 5
    assert "5 of 1000 chains gave a non-finite step" in row.warnings[-1]
    measured[: int(2 * MAX_DROPPED * 1000)] = np.nan        # 2%: could bias the mean
    row = drift_ratio("t", measured, predicted, tol=0.02, estimator="synthetic")
    assert not row.passed and "inconclusive" in row.details["verdict"]


def test_no_finite_chain_is_one_clear_error():
    from flatland.errors import UserError
    from flatland.verdicts import drift_ratio

    measured, predicted = _curved_steps(1.0, n=10)
    measured[:] = np.nan
    with pytest.raises(UserError, match="10 of 10 chains gave a non-finite step"):
        drift_ratio("t", measured, predicted, tol=0.02, estimator="synthetic")
