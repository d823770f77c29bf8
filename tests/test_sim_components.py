"""Noise models and learners of flatland_plugins: the conformance kit, then what each one does.

The statistical tests use many independent draws of a single step and compare
sample moments with the exact ones (tolerances of 5 standard errors).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flatland
from flatland import as_hyper, make_oracle, make_step

NOISES = ["none", "update", "gradient", "label", "uniform-label", "minibatch"]
LEARNERS = ["gd", "momentum", "sed", "adam", "rmsprop"]
# The conformance kit itself (jit, vmap over keys and hypers, no recompilation, structure, finiteness)
# runs on every registered noise model and learner in tests/test_engine_conformance.py.


@pytest.fixture(scope="module")
def registry():
    return flatland.assemble().registry


def test_all_registered(registry):
    assert set(NOISES) <= set(registry.names("noise"))
    assert set(LEARNERS) <= set(registry.names("learners"))
    for name in LEARNERS:
        assert "lr" in registry.create("learners", name).hyper


def _steps(registry, loss, noise, learner, hyper, n=20000, point=(1.0, 0.0)):
    """n independent single steps from ``point``: the displacements (n, d)."""
    step = make_step(loss, noise, learner)
    h = {"learner": as_hyper(learner.hyper, hyper.get("learner")), "noise": as_hyper(noise.hyper, hyper.get("noise"))}
    p = jnp.asarray(point)
    s = learner.init(p, h["learner"])
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    new = jax.jit(jax.vmap(lambda k: step(k, p, s, h)[0]))(keys)
    return np.asarray(new - p), h


def _moments_agree(d, mean, cov, z=5.0):
    """Sample mean and covariance of draws d (n, k) against exact ones, within z standard errors.

    The s.e. of each covariance entry is estimated from the draws (the steps
    can be far from Gaussian, e.g. SED's), not from a Gaussian formula.
    """
    n = d.shape[0]
    se = np.sqrt(np.clip(np.diag(cov), 1e-300, None) / n)
    assert np.all(np.abs(d.mean(0) - mean) <= z * se + 1e-15), (d.mean(0), mean, se)
    c = d - d.mean(0)
    prods = c[:, :, None] * c[:, None, :]
    se_cov = prods.std(0) / math.sqrt(n)
    assert np.all(np.abs(np.cov(d.T) - cov) <= z * se_cov + 1e-18), (np.cov(d.T), cov, se_cov)


@pytest.mark.parametrize("name,hyper", [("update", {"sigma": 0.1}), ("gradient", {"sigma": 2.0}),
                                        ("label", {"sigma": 0.3}), ("uniform-label", {"width": 1.0})])
def test_gd_step_moments_match_noise_model(registry, name, hyper):
    """Mean and covariance of one GD step off Γ equal the noise model's exact grad_cov/param_cov."""
    from flatland.estimators import step_moments

    loss, gd = registry.create("losses", "half-x2y2"), registry.create("learners", "gd")
    noise = registry.create("noise", name)
    point = (1.2, 0.3)
    d, h = _steps(registry, loss, noise, gd, {"learner": {"lr": 0.1}, "noise": hyper}, point=point)
    mean, cov = step_moments(loss, noise, gd)(jnp.asarray(point), (), h)
    _moments_agree(d, np.asarray(mean), np.asarray(cov))


def test_gradient_noise_is_parameter_noise_eta_sigma(registry):
    loss, gd = registry.create("losses", "fig5a"), registry.create("learners", "gd")
    from flatland.estimators import step_moments

    h = {"learner": {"lr": 0.05}}
    m_g = step_moments(loss, registry.create("noise", "gradient"), gd)
    m_u = step_moments(loss, registry.create("noise", "update"), gd)
    p = jnp.asarray([1.0, 0.2])
    a = m_g(p, (), {**h, "noise": {"sigma": jnp.asarray(0.2)}})
    b = m_u(p, (), {**h, "noise": {"sigma": jnp.asarray(0.05 * 0.2)}})
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12)


def test_label_noise_acts_on_residuals_every_step(registry):
    """The noisy objective is κΣ(r − ε)² with fresh ε per key: its gradient is 2κJᵀ(r − ε)."""
    loss, noise = registry.create("losses", "fig5a"), registry.create("noise", "label")
    h = as_hyper(noise.hyper, {"sigma": 0.5})
    oracle = make_oracle(loss, noise, h)
    p = jnp.asarray([1.0, 0.1])
    g1, g2 = oracle.grad(jax.random.PRNGKey(0), p), oracle.grad(jax.random.PRNGKey(1), p)
    assert not np.allclose(g1, g2)
    # gradient direction is along Jᵀ = (y, x): every draw lies on that line
    for g in (np.asarray(g1), np.asarray(g2)):
        assert abs(g[0] * 1.0 - g[1] * 0.1) < 1e-12


def test_minibatch_counts_and_unbiased(registry):
    noise = registry.create("noise", "minibatch", batch=5)
    c = noise.counts(jax.random.PRNGKey(0), 16)
    assert c.shape == (16,) and float(c.sum()) == 5
    loss = registry.create("losses", "fig5a-targets", n_rows=16, s=0.2)
    p = jnp.asarray([1.0, 0.3])
    keys = jax.random.split(jax.random.PRNGKey(2), 20000)
    g = jax.vmap(lambda k: jax.grad(lambda q: noise.objective(loss, k, q, {}))(p))(keys)
    full = jax.grad(loss)(p)
    cov = np.asarray(noise.grad_cov(loss, p, {}))
    _moments_agree(np.asarray(g), np.asarray(full), cov)


def test_minibatch_with_noisy_targets_is_label_noise(registry):
    """Batch gradient of x·y − t_i rows = label noise on x·y with σ² = s²/B (κ = 1)."""
    s, B = 0.2, 4
    loss = registry.create("losses", "fig5a-targets", n_rows=16, s=s)
    fig = registry.create("losses", "fig5a")
    mb = registry.create("noise", "minibatch", batch=B)
    lab = registry.create("noise", "label")
    p = jnp.asarray([1.0, 0.0])
    np.testing.assert_allclose(mb.grad_cov(loss, p, {}), lab.grad_cov(fig, p, {"sigma": s / math.sqrt(B)}), rtol=1e-12)


def test_noises_on_network_pytrees(registry):
    """Dict params and (T, d_out) residual rows, as the ReLU network has."""
    def residuals(p):
        return jnp.tanh(p["x"] @ p["w"]) - p["y"]

    params = {"w": jnp.ones((3, 2)) * 0.1, "x": jnp.ones((5, 3)), "y": jnp.zeros((5, 2))}
    loss = flatland.Loss(name="net", residuals=residuals, kappa=0.1)
    gd = registry.create("learners", "gd")
    noises = [registry.create("noise", n, **({"batch": 3} if n == "minibatch" else {})) for n in NOISES[1:]]

    @jax.jit
    def all_steps(key):  # one compilation for all noise models
        return [make_step(loss, noise, gd)(key, params, (), {"learner": {"lr": 0.1}, "noise": as_hyper(noise.hyper)})[0]
                for noise in noises]

    for new in all_steps(jax.random.PRNGKey(0)):
        assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(params)
        assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(new))


def test_sed_mean_step_is_smoothed_gradient(registry):
    """E[−μπ(L(θ+π) − L(θ))] from sampling equals the Gauss–Hermite value (= −μs²∇(L∗N(0,s²)))."""
    from flatland.estimators import step_moments

    loss, sed, none = registry.create("losses", "half-x2y2"), registry.create("learners", "sed"), \
        registry.create("noise", "none")
    hyper = {"learner": {"lr": 1.0, "sigma": 0.3}}
    d, h = _steps(registry, loss, none, sed, hyper, n=200000, point=(1.0, 0.2))
    mean, cov = step_moments(loss, none, sed)(jnp.asarray([1.0, 0.2]), (), h)
    _moments_agree(d, np.asarray(mean), np.asarray(cov))
    # on Γ the mean step along x is −μ s⁴ x (the (s²/2) tr H regularizer), exactly for this quartic loss
    m0, _ = step_moments(loss, none, sed)(jnp.asarray([1.0, 0.0]), (), h)
    np.testing.assert_allclose(m0[0], -1.0 * 0.3 ** 4 * 1.0, rtol=1e-10)


def test_sed_per_matrix_scales(registry):
    from flatland_plugins.learners import sed_scales

    s = sed_scales({"W": jnp.ones((4, 3)), "b": jnp.ones(3)}, per_matrix=True)
    assert float(s["W"]) == pytest.approx(0.5) and s["b"] == 1.0


def test_momentum_is_heavy_ball(registry):
    learner = registry.create("learners", "momentum")
    loss, none = registry.create("losses", "half-x2y2"), registry.create("noise", "none")
    step = make_step(loss, none, learner)
    h = {"learner": as_hyper(learner.hyper, {"lr": 0.1, "beta": 0.5}), "noise": {}}
    p = jnp.asarray([1.0, 0.5])
    v = learner.init(p, h["learner"])
    p1, v1, _ = step(jax.random.PRNGKey(0), p, v, h)
    g = jax.grad(loss)(p)
    np.testing.assert_allclose(v1, -0.1 * g)
    p2, v2, _ = step(jax.random.PRNGKey(0), p1, v1, h)
    np.testing.assert_allclose(v2, 0.5 * v1 - 0.1 * jax.grad(loss)(p1))
    np.testing.assert_allclose(p2, p1 + v2)


@pytest.mark.parametrize("bias_correction", [False, True])
@pytest.mark.parametrize("eps_in_sqrt", [True, False])
def test_rmsprop_puts_eps_where_asked(registry, eps_in_sqrt, bias_correction):
    """Two steps near a minimum (|g| ~ 1e-5 ≪ √ε = 1e-4): optax's g/√(ν+ε) and PyTorch's g/(√ν+ε) differ
    by a factor ~10 there, and bias correction (ν/(1 − decayᵗ)) by √(1/(1 − decay)) at the first step, so
    both options must reach optax."""
    from flatland.errors import UserError

    learner = registry.create("learners", "rmsprop", eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction)
    loss, none = registry.create("losses", "half-x2y2"), registry.create("noise", "none")
    step = make_step(loss, none, learner)
    lr, decay, eps = 0.01, 0.99, 1e-8
    h = {"learner": as_hyper(learner.hyper, {"lr": lr, "decay": decay, "eps": eps}), "noise": {}}
    p, nu = jnp.asarray([1e-5, 1.0]), 0.0
    s = learner.init(p, h["learner"])
    for t in (1, 2):
        g = jax.grad(loss)(p)
        nu = decay * nu + (1 - decay) * g ** 2
        nu_hat = nu / (1 - decay ** t) if bias_correction else nu
        want = p - lr * g / (jnp.sqrt(nu_hat + eps) if eps_in_sqrt else jnp.sqrt(nu_hat) + eps)
        p, s, _ = step(jax.random.PRNGKey(0), p, s, h)
        np.testing.assert_allclose(p, want, rtol=1e-12)
    for option in ("eps_in_sqrt", "bias_correction"):
        with pytest.raises(UserError, match=f"{option} must be true or false"):
            registry.create("learners", "rmsprop", **{option: "no"})
