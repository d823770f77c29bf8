"""Projection onto Γ for losses given only as a value: safeguarded, lands on Γ, agrees with the residual form.

Regression: three raw Newton steps with a pseudo-inverse of the (indefinite
off Γ) Hessian threw points near a codimension-2 valley far along it (moves of
order 10 from a 0.01 offset), so trajectory-averaged predictions of
``flatland check --loss EXPR`` were wrong while ``--residuals`` of the same
valley were right.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from flatland import Loss
from flatland import estimators as E
from flatland.errors import UserError

IDENTITY = lambda f: f  # noqa: E731


def _valley(a, b):
    """r = (xyz − a, x − b y²): Γ is a curve in R³ (codimension 2) through (b, 1, a/b)."""
    res = lambda t: jnp.stack([t[0] * t[1] * t[2] - a, t[0] - b * t[1] ** 2])  # noqa: E731
    value = lambda t: 0.5 * jnp.sum(res(t) ** 2)  # noqa: E731
    return Loss("by-residuals", residuals=res), Loss("by-value", value=value), jnp.asarray([b, 1.0, a / b])


@jax.jit
def _project_both(ab, pts):
    """Both forms' projections of ``pts`` (compiled once: a and b are traced)."""
    by_res, by_val, _ = _valley(ab[0], ab[1])
    on_val = jax.vmap(lambda t: E.project_to_manifold(by_val, t, IDENTITY, rank=2))(pts)
    on_res = jax.vmap(lambda t: E.project_to_manifold(by_res, t, IDENTITY))(pts)
    failed = jax.vmap(lambda t, o: E.projection_failed(by_val, t, o, IDENTITY))(pts, on_val)
    return on_val, on_res, jax.vmap(by_val)(on_val), failed


def test_normal_rank_is_the_codimension():
    _, by_val, point = _valley(1.3, 0.7)
    assert E.normal_rank(by_val, point, IDENTITY) == 2


@settings(max_examples=25, deadline=None)
@given(a=st.floats(0.5, 2.0), b=st.floats(0.5, 2.0), seed=st.integers(0, 2**16), size=st.sampled_from([0.01, 0.05]))
def test_value_only_projection_lands_on_gamma_next_to_the_residual_one(a, b, seed, size):
    point = _valley(a, b)[2]
    pts = point + size * jax.random.normal(jax.random.PRNGKey(seed), (64, 3))
    on_val, on_res, L_on, failed = _project_both(jnp.asarray([a, b]), pts)
    assert float(jnp.max(L_on)) < 1e-20  # on Γ
    moved = np.asarray(jnp.linalg.norm(on_val - pts, axis=1))
    offset = np.asarray(jnp.linalg.norm(pts - point, axis=1))
    assert np.all(moved <= 2 * offset)  # stays next to where it started (the old projection moved ~10 from 0.01)
    # the two forms pick points of Γ that differ only at second order in the offset
    gap = np.asarray(jnp.linalg.norm(on_val - on_res, axis=1))
    assert np.all(gap <= 10 * offset ** 2 + 1e-12), float(np.max(gap / offset ** 2))
    assert not bool(jnp.any(failed))


def test_a_projection_that_cannot_reach_gamma_is_flagged():
    """(x² + y² − 1)² + 0.01: no zero set, so L stays where it was and the flag is raised."""
    loss = Loss("lifted", value=lambda t: (t[0] ** 2 + t[1] ** 2 - 1) ** 2 + 0.01)
    project = E.projector(loss, jnp.asarray([1.0, 0.0]))
    _, failed = project(jnp.asarray([1.1, 0.1]))
    assert bool(failed)


def test_value_only_projection_needs_the_codimension():
    _, by_val, point = _valley(1.0, 1.0)
    with pytest.raises(ValueError, match="rank"):
        E.project_to_manifold(by_val, point, IDENTITY)


def test_drift_run_stops_with_one_line_when_projection_fails():
    """A prediction's projection that leaves L > 1e-4·L(θ) stops the run with a UserError naming the step."""
    import flatland

    reg = flatland.assemble().registry
    loss = Loss("lifted", value=lambda t: (t[0] ** 2 + t[1] ** 2 - 1) ** 2 + 0.01)
    noise, gd = reg.create("noise", "update"), reg.create("learners", "gd")
    with pytest.raises(UserError, match="projection onto the zero-loss manifold failed"):
        flatland.measure_drift(loss, noise, gd, {"learner": {"lr": 0.05}, "noise": {"sigma": 0.01}}, (1.0, 0.0),
                               chains=4, steps=20, burn=0, chunk=20, every=10, seed=0,
                               predict=lambda on, h: {"drift": on})


def test_observable_at_the_projected_point_measures_the_normal_motion():
    """E[Δ(x + y)] at the projected point on xy = 1 agrees with ∇c·(v + n_curv) and rejects ∇c·v alone.

    Estimator: per-chain time averages of the Rao–Blackwellised E[Δc(Φ(θ))|θ]
    at record times; standard error across 400 chains; the n_curv fraction
    (measured − without)/(with − without) within 4 s.e. of 1, and 0 (no
    n_curv) more than 8 s.e. away.
    """
    import flatland

    reg = flatland.assemble().registry
    lab = flatland.Lab(reg)
    loss, noise, gd = reg.create("losses", "hyperbola"), reg.create("noise", "update"), reg.create("learners", "gd")
    m = lab.measure(loss, noise, gd, {"learner": {"lr": 0.05}, "noise": {"sigma": 0.01}}, (2.0, 0.5), chains=400,
                    steps=200, burn=100, chunk=100, seed=3, observable="x + y", every=10,
                    observable_at_projection=True)
    r = m.run
    n_part = r.pred["drift_normal"][0] @ np.ones(2)
    without = r.pred["observable_finite_eta"][0] - n_part
    frac = flatland.ratio_along(r.obs_projected[0] - without, n_part)
    assert abs(frac["ratio"] - 1) < 4 * frac["ratio_stderr"] and frac["ratio_stderr"] < 0.05
    assert frac["ratio"] > 8 * frac["ratio_stderr"]


def test_normal_newton_direction_equals_the_eigen_form():
    """Its value is V|Λ|⁻¹Vᵀg on the ``rank`` largest eigenpairs, for indefinite H of any spectrum."""
    rng = np.random.default_rng(3)
    for d, rank in [(3, 1), (4, 2), (6, 3)]:
        U = np.linalg.qr(rng.standard_normal((d, d)))[0]
        lam = np.sort(np.concatenate([rng.uniform(-1e-3, 1e-3, d - rank), rng.uniform(0.5, 30, rank)]))
        H, g = (U * lam) @ U.T, rng.standard_normal(d)
        w, V = np.linalg.eigh(H)
        want = V[:, -rank:] @ ((V[:, -rank:].T @ g) / np.abs(w[-rank:]))
        got = np.asarray(E.normal_newton_direction(jnp.asarray(H), jnp.asarray(g), rank))
        assert np.allclose(got, want, rtol=1e-10, atol=1e-13)


def test_smooth_projection_has_finite_derivatives_where_tangent_eigenvalues_coincide():
    """log(1 + (x − 1)²) + 1 − cos(y − 2) in R⁴: w and z do not enter, so H has two tangent eigenvalues that
    are exactly 0 everywhere. Regression: the derivative of ``eigh`` divides by their difference, and the
    Rao–Blackwellised step of the projected point was NaN in every chain (a check then had no finite chain).
    Φ moves only w and z here (Γ is the plane x = 1, y = 2), so the step of Φ is the step's (w, z) part."""
    loss = Loss("two-free", value=lambda t: jnp.log1p((t[1] - 1) ** 2) + 1 - jnp.cos(t[2] - 2))
    point = jnp.asarray([0.3, 1.0, 2.0, -0.5])
    project = E.projector(loss, point)
    th = point + 0.01 * jax.random.normal(jax.random.PRNGKey(0), (16, 4))
    mean, cov = jnp.asarray([1e-4, 2e-4, -3e-4, 4e-4]), 1e-4 * jnp.eye(4)
    step = jax.vmap(lambda t: E.observable_step(project.smooth, mean, cov, t))(th)
    assert np.allclose(np.asarray(step), [1e-4, 0, 0, 4e-4], atol=1e-12)


def test_smooth_projection_derivatives_match_finite_differences_on_a_curved_valley():
    """Φ of the value-only codimension-2 valley log(1 + (wx − 1)²) + 1 − cos(y − z²): first and second
    derivatives by autodiff agree with central differences (step 1e-4: error O(1e-8) relative)."""
    value = lambda t: jnp.log1p((t[0] * t[1] - 1) ** 2) + 1 - jnp.cos(t[2] - t[3] ** 2)  # noqa: E731
    point = jnp.asarray([2.0, 0.5, 1.0, 1.0])
    phi = jax.jit(E.projector(Loss("logcos", value=value), point).smooth)
    th = point + jnp.asarray([3e-3, -2e-3, 1e-3, 2e-3])
    h, eye = 1e-4, jnp.eye(4)
    J_fd = jnp.stack([(phi(th + h * e) - phi(th - h * e)) / (2 * h) for e in eye], axis=1)
    H_fd = jnp.stack([jnp.stack([(phi(th + h * (a + b)) - phi(th + h * (a - b)) - phi(th - h * (a - b))
                                  + phi(th - h * (a + b))) / (4 * h * h) for b in eye], axis=1) for a in eye], axis=1)
    assert np.allclose(jax.jacfwd(phi)(th), J_fd, atol=1e-7)
    assert np.allclose(jax.jacfwd(jax.jacfwd(phi))(th), H_fd, atol=1e-5)
