"""Compiled JAX predictions: cached, jit/vmap-able, no retracing, equal to ``predict``."""
import numpy as np
import pytest

import flatland  # noqa: F401
import jax
import jax.numpy as jnp
from flatland.errors import UserError
from flatland.theory import Problem, compile_prediction, predict
from flatland.theory import _compile
from named_laws import hyper, law, predict_named

OPPOSITE = Problem.from_expr("0.5*((x*y)**2 + ((3 - x)*z)**2)")


def test_compiled_function_is_cached_and_lambdified_once(monkeypatch):
    f = compile_prediction(OPPOSITE, law("update"), observable="x**2")
    calls = []
    monkeypatch.setattr(_compile, "lambdify_flat", lambda *a, **k: calls.append(a) or pytest.fail("re-lambdified"))
    assert compile_prediction(OPPOSITE, law("update"), observable="x**2") is f
    assert compile_prediction(Problem.from_expr("0.5*((x*y)**2 + ((3 - x)*z)**2)"), law("update"),
                              observable="x**2") is f
    assert not calls


def test_no_retrace_on_new_values_and_jit_of_vmap_works():
    f = compile_prediction(OPPOSITE, law("label"), observable="x**2")
    traces = []

    def counted(theta, eta, sigma):
        traces.append(1)  # runs only while tracing
        return f(theta, {"learner": {"lr": eta}, "noise": {"sigma": sigma}})

    g = jax.jit(jax.vmap(counted, in_axes=(0, 0, 0)))
    n = 64
    xs = jnp.linspace(0.5, 2.5, n)
    theta = jnp.stack([xs, jnp.zeros(n), jnp.zeros(n)], axis=1)
    out1 = g(theta, jnp.full(n, 0.05), jnp.full(n, 0.01))
    out2 = g(theta * 1.01, jnp.full(n, 0.04), jnp.full(n, 0.02))
    assert len(traces) == 1
    assert out1["drift_leading"].shape == (n, 3) and out2["observable_leading"].shape == (n,)
    # label drift on this valley: −(κη²σ²/2) ∂x(x² + (3−x)²) = −(η²σ²/4)(4x − 6) along x
    expected = -(0.05**2 * 0.01**2 / 4) * (4 * xs - 6)
    np.testing.assert_allclose(out1["drift_leading"][:, 0], expected, rtol=1e-10, atol=1e-22)
    np.testing.assert_allclose(out1["drift_leading"][:, 1:], 0, atol=1e-22)


NOISES = ["none", "update", "gradient", "label", "uniform-label", "sed"]


def test_compiled_jax_equals_predict():
    point = [1.3, 0.0, 0.0]
    obs = "x**2 + y*z"
    # one jit over all noise models: a single compilation
    both = jax.jit(lambda th, eta, sigma: {
        n: compile_prediction(OPPOSITE, law(n), observable=obs)(th, law(n).resolve(hyper(n, sigma, eta)))
        for n in NOISES})
    outs = both(jnp.asarray(point), 0.1, 0.05)
    for noise in NOISES:
        pred = predict_named(OPPOSITE, point, noise, sigma=0.05, eta=0.1, observable=obs)
        out = outs[noise]
        np.testing.assert_allclose(out["drift_leading"], pred.drift_leading, rtol=1e-12, atol=1e-30)
        np.testing.assert_allclose(out["drift_finite_eta"], pred.drift_finite_eta, rtol=1e-12, atol=1e-30)
        np.testing.assert_allclose(out["observable_finite_eta"], pred.observable_drift_finite_eta,
                                   rtol=1e-12, atol=1e-30)
        # and both agree with the closed form that predict computes from SymPy, where the declared
        # covariance has one (C = aI + bH); SED's probe covariance has an H² term on this rank-2 valley
        assert pred.closed_form == (noise != "sed")
        if pred.closed_form:
            np.testing.assert_allclose(pred.drift_finite_eta, pred.drift_closed_form_finite_eta, rtol=1e-9,
                                       atol=1e-30)
        assert (np.any(np.asarray(pred.drift_leading) != 0)) == (noise != "none")


def test_off_manifold_points_give_nearby_predictions():
    """Slightly off Γ the top-m eigenspace still defines the normal space: the prediction moves smoothly."""
    f = jax.jit(compile_prediction(OPPOSITE, law("update")))
    h = {"learner": {"lr": 0.05}, "noise": {"sigma": 0.01}}
    on = f(jnp.array([1.0, 0.0, 0.0]), h)["drift_leading"]
    off = f(jnp.array([1.0, 1e-4, -1e-4]), h)["drift_leading"]
    np.testing.assert_allclose(off, on, rtol=0, atol=1e-3 * np.max(np.abs(on)))


def test_ito_term_cancels_drift_on_the_hyperbola():
    """On xy = 1 under update noise, q = x² − y² has zero mean change at leading order."""
    p = Problem.from_residuals("x*y - 1")
    pred = predict_named(p, "x=2,y=0.5", "update", sigma=0.01, eta=0.05, observable="x**2 - y**2")
    assert abs(pred.observable_drift_without_ito) > 1e-5
    assert abs(pred.observable_drift_leading) < 1e-12 * abs(pred.observable_drift_without_ito)
    assert pred.observable_ito_term == pytest.approx(-pred.observable_drift_without_ito, rel=1e-12)


def test_label_noise_needs_residuals_and_minibatch_is_zero_on_gamma():
    loss_only = Problem.from_expr("x**2*y**2 + x*y**3")
    with pytest.raises(UserError, match="--residuals"):
        compile_prediction(loss_only, law("label"))
    with pytest.raises(TypeError, match="StepLaw"):
        compile_prediction(OPPOSITE, "update")
    # minibatch SGD on exactly fitted rows declares C = 0 on Γ: no drift
    pred = predict_named(OPPOSITE, [1.0, 0.0, 0.0], "minibatch", sigma=0.0, eta=0.05)
    assert pred.drift_finite_eta == [0.0, 0.0, 0.0] and pred.regularizer == "0"


@pytest.mark.parametrize("residual, at", [("x**2 + y**2 - 1", "x=0.6,y=0.8"), ("x**2/4 + y**2 - 1", "x=1.2,y=0.8")])
def test_a_quantity_constant_on_a_curved_gamma_does_not_drift(residual, at):
    """c = the residual + 1 is constant on Γ: its Itô term is cancelled exactly by ∇c·n_curv, the normal
    motion of the projected point (without n_curv the rule predicted E[Δc] = the Itô term ≠ 0)."""
    p = Problem.from_residuals(residual)
    pred = predict_named(p, at, "update", sigma=0.01, eta=0.05, observable=residual + " + 1")
    assert abs(pred.observable_ito_term) > 1e-5
    assert abs(pred.observable_drift_leading) < 1e-12 * abs(pred.observable_ito_term)
    assert abs(pred.observable_drift_finite_eta) < 1e-12 * abs(pred.observable_ito_term)
    # n_curv points into the curve's inside, along the normal
    n = np.asarray(pred.drift_normal)
    assert np.linalg.norm(n) > 0 and abs(n @ np.asarray(pred.tangent_basis[0])) < 1e-12 * np.linalg.norm(n)
