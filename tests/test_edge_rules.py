"""Edge rules of the verdict, estimator, manifold, compile, sweep-statistics and resume helpers.

Each test pins down one rule that a mutation audit could change without any other test noticing:
the verdict's |error| and its non-finite-chain rules, the estimators' masks and standard errors,
the rank and signs of the manifold helpers, the shape of a declared covariance, the order-statistic
median interval, the resume message for a removed key, and two checks of the conformance kit.
All are small and run no simulation.
"""
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from flatland.errors import PluginError, UserError
from flatland.estimators import finite_chains, mean_se, ratio_along
from flatland.verdicts import decisive, drift_ratio


# ---------------------------------------------------------------- verdicts

def test_decisive_judges_the_size_of_a_negative_error():
    """A negative error beyond the tolerance fails: the rule bounds |error|, not error."""
    ok, why = decisive(-0.5, 0.001, 0.02)
    assert ok is False and "off by" in why


def _chains(n=1000, seed=0, scale=1e-3):
    """Per-chain (measured, predicted) that agree: predicted (1, 2, 0) plus noise, measured the same plus noise."""
    rng = np.random.default_rng(seed)
    predicted = np.array([1.0, 2.0, 0.0]) + scale * rng.standard_normal((n, 3))
    measured = predicted + scale * rng.standard_normal((n, 3))
    return measured, predicted


def test_a_single_non_finite_chain_is_left_out_and_named():
    """One non-finite chain of 1000 is left out (and counted); the verdict is computed on the rest."""
    measured, predicted = _chains()
    measured[17, 1] = np.nan
    r = drift_ratio("one-nan", measured, predicted, tol=0.05, estimator="test")
    assert r.details["left_out_chains"] == 1
    assert r.details["chains"] == 999
    assert math.isfinite(r.ratio) and math.isfinite(r.measured)
    assert r.passed, r.details["verdict"]
    assert any("1 of 1000 chains" in w for w in r.warnings)


def test_fewer_than_two_finite_chains_is_a_user_error():
    """With only one finite chain of three there is nothing to measure: a UserError, not a verdict."""
    measured, predicted = _chains(n=3)
    measured[0, 0] = np.nan
    predicted[2, 2] = np.inf
    with pytest.raises(UserError, match="nothing is left to measure"):
        drift_ratio("one-left", measured, predicted, tol=0.05, estimator="test")


def test_the_leading_order_prediction_is_filtered_with_the_same_chains():
    """The leading-order prediction loses the same (non-finite) chains as measured and predicted."""
    measured, predicted = _chains()
    measured[[3, 50, 51, 400, 999], 0] = np.nan
    leading = 0.9 * predicted
    r = drift_ratio("leading", measured, predicted, leading, tol=0.05, estimator="test")
    assert r.details["left_out_chains"] == 5 and r.details["chains"] == 995
    assert r.details["ratio_to_leading"] == pytest.approx(1 / 0.9, rel=1e-3)
    assert r.leading == pytest.approx(0.9 * r.predicted, rel=1e-3)


def test_the_tangent_part_is_judged_alone_once_n_curv_exceeds_the_tolerance():
    """Where n_curv is more than tol of the step (here 8.7·tol), a 20% error of the drift along Γ fails."""
    tol = 0.1
    t, nc = 0.5, math.sqrt(0.75)           # tangent (x) and normal (y) parts of a unit predicted step
    rng = np.random.default_rng(1)
    n = 1000
    predicted = np.array([t, nc]) + 1e-4 * rng.standard_normal((n, 2))
    measured = np.array([1.2 * t, nc]) + 1e-4 * rng.standard_normal((n, 2))
    whole = drift_ratio("whole", measured, predicted, tol=tol, estimator="test")
    assert whole.passed, whole.details["verdict"]      # the whole vector agrees within tol
    r = drift_ratio("tangent", measured, predicted, tol=tol, estimator="test", tangent_basis=[[1.0, 0.0]])
    assert not r.passed
    assert "along Γ" in r.details["verdict"]
    assert r.details["tangent_ratio"] == pytest.approx(1.2, rel=1e-3)


# ---------------------------------------------------------------- estimators

def test_finite_chains_drops_a_chain_with_one_non_finite_coordinate():
    """A chain is kept only when every coordinate is finite: a NaN in one coordinate leaves it out."""
    x = np.ones((20, 3))
    x[:5, 1] = np.nan
    keep = finite_chains(x, np.ones((20, 3)), None)
    assert keep.sum() == 15
    assert not keep[:5].any() and keep[5:].all()


def test_ratio_stderr_is_paired_when_predictions_vary_per_chain():
    """s.e. of the ratio is sd(a − R·b)/(√n·|b̄|): per-chain variation of the prediction cancels in the pair."""
    rng = np.random.default_rng(0)
    n, noise = 2000, 1e-3
    p = np.array([1.0, -2.0, 0.5]) * rng.uniform(0.5, 1.5, (n, 1)) + 0.2 * rng.standard_normal((n, 3))
    m = 2.0 * p + noise * rng.standard_normal((n, 3))
    r = ratio_along(m, p)
    assert r["ratio"] == pytest.approx(2.0, abs=1e-4)
    pbar = np.linalg.norm(p.mean(0))
    assert r["ratio_stderr"] == pytest.approx(noise / (math.sqrt(n) * pbar), rel=0.1)


def test_ratio_across_is_the_part_of_the_difference_across_the_mean_direction():
    """Measured = 1.01·predicted differs only along the mean predicted direction: its across part is ~0."""
    rng = np.random.default_rng(0)
    n = 500
    p = np.array([1.0, 2.0, 3.0]) * rng.uniform(0.5, 1.5, (n, 1)) + 0.1 * rng.standard_normal((n, 3))
    eps = 1e-6 * rng.standard_normal((n, 3))
    r = ratio_along(1.01 * p, p + eps)
    assert r["ratio"] == pytest.approx(1.01, rel=1e-4)
    assert r["across"] < 1e-3


def test_mean_se_uses_the_sample_standard_deviation():
    """mean_se's standard error uses ddof = 1: [0, 2] has mean 1 and s.e. exactly 1."""
    m, se = mean_se(np.array([0.0, 2.0]))
    assert m == 1.0
    assert se == pytest.approx(1.0, rel=1e-12)


# ---------------------------------------------------------------- manifold

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_local_rank_is_the_largest_rank_over_the_tries(seed):
    """On r = (xy, xz) at the origin, neighbours land on the plane x = 0 (rank 1) or the line (rank 2): 2 wins."""
    from flatland.theory import Problem
    from flatland.theory._manifold import local_rank

    problem = Problem.from_residuals("x*y, x*z")
    assert local_rank(problem, [0.0, 0.0, 0.0], seed=seed) == 2


def test_rank_and_basis_signs_each_column_by_its_largest_entry():
    """Every normal and tangent basis column has its largest-magnitude entry positive."""
    from flatland.theory import rank_and_basis

    rng = np.random.default_rng(0)
    for _ in range(10):
        A = rng.standard_normal((3, 2))
        m, lam, normal, tangent = rank_and_basis(A @ A.T)
        assert m == 2 and normal.shape == (3, 2) and tangent.shape == (3, 1)
        for U in (normal, tangent):
            idx = np.argmax(np.abs(U), axis=0)
            assert np.all(U[idx, np.arange(U.shape[1])] > 0)


# ---------------------------------------------------------------- compile

def test_a_declared_covariance_that_is_a_vector_is_the_plugins_error():
    """σ²·ones(3) on 3 parameters is a (3,) vector, not 3 × 3: a PluginError naming its shape."""
    import flatland.theory
    from flatland.theory import Problem, StepLaw

    noise = types.SimpleNamespace(covariance=lambda ctx: ctx.hyper["sigma"] ** 2 * np.ones(3), hyper={"sigma": 0.01})
    law = StepLaw(noise=noise, name="vector")
    with pytest.raises(PluginError, match=r"has shape \(3,\), not \(3, 3\)"):
        flatland.theory.predict(Problem.from_residuals("x*y*z - 1"), [2.0, 0.5, 1.0], law)


# ---------------------------------------------------------------- sweep statistics

def _median_interval_ranks(n, level):
    """The largest j with P(j ≤ Binomial(n, ½) ≤ n − j) ≥ level (exact, from binomial coefficients); None if none."""
    best = None
    for j in range(1, n // 2 + 1):
        below = sum(math.comb(n, k) for k in range(j)) / 2**n
        if 1 - 2 * below >= level:
            best = j
    return best


def test_median_ci_is_the_tightest_order_statistic_interval():
    """median_ci takes x_(j), x_(n+1−j) with j the largest rank whose coverage is still ≥ the level."""
    from flatland.sweep_stats import median_ci

    assert median_ci(np.arange(9.0)) == (4.0, 1.0, 7.0)   # P(2 ≤ B(9, ½) ≤ 7) = 0.961; j = 3 covers 0.82
    # "at least": a coverage exactly at the level still counts (1 − 2·10/512 for n = 9, 1 − 2·11/1024 for n = 10)
    assert median_ci(np.arange(9.0), level=1 - 20 / 512) == (4.0, 1.0, 7.0)
    assert median_ci(np.arange(9.0), level=1 - 20 / 512 + 1e-9) == (4.0, 0.0, 8.0)
    assert median_ci(np.arange(10.0), level=1 - 22 / 1024) == (4.5, 1.0, 8.0)
    for n in range(6, 41):
        j = _median_interval_ranks(n, 0.95)
        med, lo, hi = median_ci(np.arange(float(n)))
        assert (lo, hi) == (j - 1, n - j), n


# ---------------------------------------------------------------- resume

def test_config_changes_names_a_key_that_the_new_config_no_longer_sets(tmp_path):
    """A key of the folder's config that the new one lacks is named, as '(not set)'."""
    from flatland.config import RUN_DEFAULTS, RunConfig, to_toml
    from flatland.runner import config_changes

    cfg = RunConfig(task={"name": "valley"}, learner={"name": "gd", "lr": 0.05},
                    noise={"name": "update", "sigma": 0.01}, run=dict(RUN_DEFAULTS))
    (tmp_path / "config.toml").write_text(to_toml(cfg))
    assert config_changes(tmp_path, cfg) == ""
    old = RunConfig(task=cfg.task, learner=cfg.learner, noise=dict(cfg.noise, foo=1.5), run=cfg.run)
    (tmp_path / "config.toml").write_text(to_toml(old))
    assert config_changes(tmp_path, cfg) == "noise.foo 1.5 → '(not set)'"


# ---------------------------------------------------------------- conformance kit

def test_a_loss_point_from_which_projection_fails_is_not_near_gamma():
    """A point from which the theory cannot project (r = x² + 1 has no zero) is told 'not near Γ'."""
    from flatland import Loss
    from flatland.testing import check_loss

    loss = Loss("no-zero-test", residuals=lambda p: jnp.atleast_1d(p[0] ** 2 + 1), kappa=0.5,
                variables=("x",), residual_exprs=("x**2 + 1",), point=(0.5,))
    with pytest.raises(AssertionError, match=r"its point \[0\.5\] is not near Γ"):
        check_loss(loss)


def test_a_noise_whose_oracle_gradient_is_biased_fails_the_kit():
    """grad_cov may be right, but the oracle's mean gradient must be ∇L: a constant bias fails the kit."""
    from flatland import NoiseModel
    from flatland.testing import smoke_loss
    from flatland.testing.declarations import check_noise_declarations

    class Gaussian(NoiseModel):
        name, hyper = "biased-test", {"sigma": 0.1}
        bias = 0.0

        def perturb_grad(self, key, grad, hyper):
            flat, back = ravel_pytree(grad)
            return back(flat + hyper["sigma"] * (jax.random.normal(key, flat.shape) + self.bias))

        def grad_cov(self, loss, params, hyper):
            return hyper["sigma"] ** 2 * jnp.eye(ravel_pytree(params)[0].shape[0])

    check_noise_declarations(Gaussian(), smoke_loss())
    biased = Gaussian()
    biased.bias = 0.5
    with pytest.raises(AssertionError, match="mean must be ∇L.*sample mean"):
        check_noise_declarations(biased, smoke_loss())
