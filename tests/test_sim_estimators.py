"""Estimators and the drift driver: quadrature, stationary law, ratios, projection, records, divergence."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flatland
from flatland import estimators as E
from flatland.simulate import make_runner


def test_gauss_hermite_moments_exact():
    from flatland_plugins.learners import gauss_hermite

    z, w = gauss_hermite(2, 5)
    assert w.sum() == pytest.approx(1.0)
    assert w @ z[:, 0] ** 4 == pytest.approx(3.0)
    assert w @ (z[:, 0] ** 2 * z[:, 1] ** 2) == pytest.approx(1.0)
    assert w @ z[:, 0] ** 8 == pytest.approx(105.0)  # degree 8 ≤ 2n − 1 = 9


def test_stationary_cov_is_discrete_lyapunov_solution():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    lam = np.array([0.0, 1.0, 3.0])
    H = Q @ np.diag(lam) @ Q.T
    C = rng.standard_normal((3, 3))
    C = C @ C.T
    eta = 0.3
    S = E.linear_stationary_cov(-eta * H, C, H)
    Qn = Q[:, 1:]
    Ct = Qn.T @ C @ Qn
    li, lj = lam[1:, None], lam[None, 1:]
    want = Qn @ (Ct / (eta * (li + lj) - eta ** 2 * li * lj)) @ Qn.T
    np.testing.assert_allclose(S, want, rtol=1e-10, atol=1e-14)


def test_ratio_along_recovers_scale_and_se():
    rng = np.random.default_rng(1)
    n = 4000
    p = np.tile([2.0, 0.0], (n, 1)) + 0.1 * rng.standard_normal((n, 2))
    m = 1.05 * p + 0.2 * rng.standard_normal((n, 2))
    r = E.ratio_along(m, p)
    assert abs(r["ratio"] - 1.05) < 4 * r["ratio_stderr"]
    assert r["ratio_stderr"] == pytest.approx(0.2 / 2 / math.sqrt(n), rel=0.1)


def test_projection_lands_on_gamma():
    loss = flatland.assemble().registry.create("losses", "hyperbola")
    on = E.project_to_manifold(loss, jnp.asarray([2.1, 0.45]), lambda f: f)
    assert abs(float(on[0] * on[1] - 1)) < 1e-12
    assert float(jnp.linalg.norm(on - jnp.asarray([2.1, 0.45]))) < 0.1


def test_observable_step_quadratic_is_exact():
    c = lambda t: t[0] ** 2 - 3 * t[0] * t[1]
    m = jnp.asarray([0.1, -0.2])
    C = jnp.asarray([[0.04, 0.01], [0.01, 0.09]])
    th = jnp.asarray([1.0, 2.0])
    # E[c(θ + Δ)] − c(θ) for Δ ~ (m, C), by hand
    want = (2 * 1.0 * 0.1 + (0.04 + 0.01)) - 3 * (1.0 * -0.2 + 2.0 * 0.1 + (0.01 + 0.1 * -0.2))
    assert float(E.observable_step(c, m, C, th)) == pytest.approx(want, rel=1e-12)


def test_record_at_middle_of_block():
    """A counter: records with record_at=every//2 sample the block's middle."""
    run = make_runner(lambda k, p, s, h: (p + 1.0, s, {}), 20, every=10, record=lambda p, s, h: p, record_at=5)
    tr = run(jax.random.PRNGKey(0), jnp.asarray(0.0), (), {}, 0)
    np.testing.assert_allclose(tr.records, [5.0, 15.0])
    with pytest.raises(ValueError):
        make_runner(lambda k, p, s, h: (p, s, {}), 20, every=10, record_at=10)


def test_measure_drift_shapes_and_divergence():
    from flatland.drift import measure_drift

    reg = flatland.assemble().registry
    # constant curvature 4 along y (no catapult to a flatter x can rescue a large step)
    loss = flatland.Loss(name="flat-x", residuals=lambda t: jnp.stack([2 * t[1]]), kappa=0.5, point=(1.0, 0.0))
    noise, gd = reg.create("noise", "update"), reg.create("learners", "gd")
    grid = [{"learner": {"lr": 0.1}, "noise": {"sigma": 0.01}}, {"learner": {"lr": 50.0}, "noise": {"sigma": 0.01}}]
    run = measure_drift(loss, noise, gd, grid, (1.0, 0.0), chains=16, steps=100, burn=100, chunk=100, seed=0)
    assert run.rb.shape == (2, 16, 2) and run.raw.shape == (2, 16, 2)
    assert run.grid(0).n_diverged == 0
    assert run.grid(1).n_diverged == 16  # ηλ = 200: |1 − ηλ|^t overflows within 200 steps; the step is recorded
    assert np.all(run.diverged_at[1] >= 0)


def test_the_cubature_step_is_exact_to_degree_five_for_gaussian_steps():
    """E[c(θ + Δ)] − c(θ) for Gaussian Δ: the degree-5 cubature is exact for c = x⁴y + y³ (by Isserlis), where
    the second-order expansion misses the higher terms; both are exact for a quadratic c and a singular C."""
    c = lambda t: t[0] ** 4 * t[1] + t[1] ** 3  # noqa: E731
    th, m = jnp.asarray([0.7, -1.2]), jnp.asarray([0.05, 0.1])
    a, b, s = 0.09, 0.04, 0.3 * 0.2 * 0.5        # Var x, Var y, Cov(x, y): a correlated, full-rank C
    C = jnp.asarray([[a, s], [s, b]])
    mx, my = (float(v) for v in th + m)          # the step's end point has mean (mx, my) and covariance C
    Ex4y = (my * (mx ** 4 + 6 * mx ** 2 * a + 3 * a ** 2) + s * (4 * mx ** 3 + 12 * mx * a))  # E[x⁴ y], Gaussian
    want = Ex4y + (my ** 3 + 3 * my * b) - float(c(th))
    assert float(E.observable_step(c, m, C, th, cubature=True)) == pytest.approx(want, rel=1e-12)
    assert abs(float(E.observable_step(c, m, C, th)) - want) > 1e-3            # the expansion is not exact here
    quad = lambda t: t[0] ** 2 - 3 * t[0] * t[1]  # noqa: E731
    v = jnp.asarray([1.0, -2.0])
    singular = 0.01 * jnp.outer(v, v)             # rank 1, as label noise on one residual gives
    assert float(E.observable_step(quad, m, singular, th, cubature=True)) == pytest.approx(
        float(E.observable_step(quad, m, singular, th)), rel=1e-12)
