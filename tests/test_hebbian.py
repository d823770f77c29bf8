"""The Hebbian plugin (PSP similarity matching): its rule is flatland's components, its theory is derived.

Checks here are exact (no sampling): the components pass the conformance kit; the online objective's
gradients are the Hebbian/anti-Hebbian updates; the start is a fixed point; the SymPy-derived pair
variance equals its closed form and reduces to Qin et al.'s Σλ⁻²/4 without lateral noise.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from flatland import assemble
from flatland.testing import check_learner
from flatland_plugins.hebbian.psp import gda, psp_task
from flatland_plugins.hebbian.theory import diffusion_constant, flatland_noise_constant, pair_variance

LAM = [3.0, 1.0, 0.3, 0.2, 0.1]


def test_gda_is_a_learner_and_the_components_register():
    check_learner(gda())
    reg = assemble().registry
    assert reg.create("losses", "psp", n=4, k=2, spectrum=[2.0, 1.0, 0.5, 0.1]).name == "psp"
    assert reg.create("noise", "online-samples").requires == ("online",)


def test_online_gradients_are_the_hebbian_rule():
    loss = psp_task(n=5, k=2, spectrum=LAM)
    rng = np.random.default_rng(0)
    p = {"W": jnp.asarray(rng.normal(size=(2, 5))), "M": jnp.asarray(np.diag([2.0, 1.5]) + 0.1 * rng.normal(size=(2, 2)))}
    x = jnp.asarray(rng.normal(size=5))
    g = jax.grad(lambda q: loss.extras["online"]["value"](q, x))(p)
    S = 0.5 * (p["M"] + p["M"].T)
    y = jnp.linalg.solve(S, p["W"] @ x)
    np.testing.assert_allclose(g["W"], p["W"] - jnp.outer(y, x), atol=1e-12)           # descent: W ← W + η(yxᵀ − W)
    np.testing.assert_allclose(g["M"], 0.5 * (jnp.outer(y, y) - p["M"]), atol=1e-12)   # ascent at 2η: M ← M + η(yyᵀ − M)


def test_the_start_is_a_fixed_point_of_the_mean_rule():
    loss = psp_task(n=5, k=2, spectrum=LAM)
    p = loss.initial_params(jax.random.PRNGKey(0))
    g = jax.grad(loss.value)(p)                        # E_x of the online gradient
    assert float(jnp.max(jnp.abs(g["W"]))) < 1e-12 and float(jnp.max(jnp.abs(g["M"]))) < 1e-12


def test_derived_pair_variance_and_its_limits():
    expr, (li, lj, cw, cs) = pair_variance()
    closed = (cw * (1 / li**2 + 1 / lj**2) + cs * (li - lj) ** 2 / (li**2 * lj**2)) / 4
    assert sp.simplify(expr - closed) == 0
    eta, sigma = 0.01, 0.03
    qin = eta * sigma**2 / 4 * (1 / LAM[0] ** 2 + 1 / LAM[1] ** 2)
    assert diffusion_constant(LAM, 2, eta * sigma**2, 0.0) == pytest.approx(qin)          # W noise only: Qin et al.
    assert diffusion_constant([1.0, 1.0, 0.5], 2, 1.0, 7.0) == pytest.approx(0.5)          # equal λ: M noise drops out
    # k = 3 sums the three pairs; flatland's update noise on M gives S off-diagonal variance ησ²/2
    d3 = flatland_noise_constant(LAM, 3, eta, sigma)
    pairs = sum(diffusion_constant([LAM[i], LAM[j]], 2, eta * sigma**2, eta * sigma**2 / 2)
                for i, j in ((0, 1), (0, 2), (1, 2)))
    assert d3 == pytest.approx(pairs)


@pytest.mark.parametrize("bad", [dict(k=5), dict(spectrum=[1.0, 2.0, 0.5, 0.2, 0.1]), dict(spectrum=[1, 1, 1, 1, 1])])
def test_psp_task_refuses_bad_options(bad):
    from flatland import UserError
    with pytest.raises(UserError):
        psp_task(**({"n": 5, "k": 2} | bad))


def test_synaptic_noise_passes_the_kit_and_states_its_covariance():
    """The kit draws the noise and compares it with param_cov; here: W entries σ_W², M entries σ_M²."""
    from flatland.testing import check_noise
    from flatland_plugins.hebbian.psp import SynapticNoise

    loss = psp_task(n=5, k=2, spectrum=LAM)
    noise = SynapticNoise()
    check_noise(noise, loss, gda())
    p = loss.initial_params(jax.random.PRNGKey(0))
    hyper = {"sigma_w": jnp.asarray(0.3), "sigma_m": jnp.asarray(0.1)}
    declared = np.diag(np.asarray(noise.param_cov(p, hyper)))      # the kit compared it with 4,000 draws
    assert np.allclose(declared[:4], 0.01) and np.allclose(declared[4:], 0.09)   # ravel order: M (2×2), then W


def test_unrolled_solve_equals_lapack():
    from flatland_plugins.hebbian.psp import _solve

    rng = np.random.default_rng(3)
    for k in (1, 2, 3, 5):
        A = rng.normal(size=(k, k))
        S = jnp.asarray(A @ A.T + k * np.eye(k))
        B = jnp.asarray(rng.normal(size=(k, 4)))
        np.testing.assert_allclose(_solve(S, B), np.linalg.solve(S, B), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(_solve(S, B[:, 0]), np.linalg.solve(S, B[:, 0]), rtol=1e-10, atol=1e-12)


def test_development_of_known_rotations():
    """The angle development recovers a known sequence of rotations (k = 2 unwrapped past π, and k = 3)."""
    from flatland_plugins.hebbian.diffusion import development, diffusion_estimate

    phi = np.cumsum(np.full(40, 0.2))                                  # 8 rad in total: wraps past π
    Q = np.stack([[[np.cos(f), -np.sin(f)], [np.sin(f), np.cos(f)]] for f in np.r_[0, phi]])
    a = development(Q)
    np.testing.assert_allclose(np.abs(a[:, 0]), np.r_[0, phi], atol=1e-12)
    from scipy.linalg import expm
    rng = np.random.default_rng(0)
    gens = [rng.normal(scale=0.05, size=(3, 3)) for _ in range(30)]
    gens = [g - g.T for g in gens]
    Qs = [np.eye(3)]
    for g in gens:
        Qs.append(expm(g) @ Qs[-1])
    a3 = development(np.stack(Qs))
    want = np.cumsum([[g[1, 0], g[2, 0], g[2, 1]] for g in gens], axis=0)
    np.testing.assert_allclose(np.abs(a3[1:]), np.abs(want), atol=1e-10)
    # Brownian angles with D = 0.01 per step, recorded every 5 steps: the estimate finds D within 3 s.e.
    walk = np.cumsum(rng.normal(scale=np.sqrt(0.01 * 5), size=(400, 200, 1)), axis=1)
    e = diffusion_estimate(np.concatenate([np.zeros((400, 1, 1)), walk], 1), 5)
    assert abs(e["D"] - 0.01) < 3 * e["se"] and e["se"] < 0.001


def test_ring_outputs_solve_the_non_negative_problem():
    """KKT conditions of min_{y ≥ 0} −yᵀu + ½yᵀSy at the returned y: gradient ≥ 0, = 0 where y > 0."""
    from flatland_plugins.hebbian.ring import outputs, ring_inputs

    rng = np.random.default_rng(0)
    k, n = 6, 12
    A = rng.normal(size=(k, k))
    M = jnp.asarray(A @ A.T / k + np.eye(k))
    W = jnp.asarray(rng.uniform(size=(k, n)))
    X = jnp.asarray(ring_inputs(n, 16, 8.0, spread=0.5, seed=1))
    Y = np.asarray(outputs(W, M, X, 0.1, sweeps=200))
    G = np.asarray(M) @ Y - (np.asarray(W @ X) - 0.1)
    assert Y.min() >= 0 and (Y > 0).any()
    assert G.min() > -1e-8 and np.abs(G[Y > 1e-10]).max() < 1e-8


def test_ring_centroids_of_known_bumps():
    from flatland_plugins.hebbian.ring import centroids

    theta = 2 * np.pi * np.arange(64) / 64
    where = np.array([0.3, 3.0, 6.1])
    Y = np.exp(8 * (np.cos(theta[None] - where[:, None]) - 1))
    Y[0, 40] += 0.5                                          # weak activity far from the field is ignored
    c, strength = centroids(jnp.asarray(Y), theta)
    np.testing.assert_allclose(np.asarray(c), where, atol=0.02)
    assert np.all(np.asarray(strength) > 0)


@pytest.mark.parametrize("bad", [dict(k=0), dict(kappa=-1.0), dict(spread=1.0), dict(beta=-0.1)])
def test_ring_task_refuses_bad_options(bad):
    from flatland import UserError
    from flatland_plugins.hebbian.ring import nsm_ring_task
    with pytest.raises(UserError):
        nsm_ring_task(**bad)


def test_gda_refuses_an_ascent_name_that_is_no_parameter():
    """ascent = "Q" left every leaf in descent and the run went on (W grew ~100x); "W" alone diverged. A name
    that is no leaf is refused in one line; names are given separated by commas."""
    from flatland import UserError

    params = {"W": jnp.zeros((2, 3)), "M": jnp.eye(2)}
    with pytest.raises(UserError, match=r"ascent names 'Q', not a parameter of this task \(its parameters: W, M\)"):
        gda("Q").init(params, {})
    assert gda("M, W").init(params, {}) == () and gda(("M",)).init(params, {}) == ()


def test_gda_refuses_a_time_constant_of_zero_before_the_run_starts(tmp_path):
    """τ = 0 passed the sign rule (≥ 0) and the run "diverged at step 0" (the ascent rate lr/τ): gda declares
    τ positive, and the engine refuses 0 in one line naming it, writing nothing."""
    import tomllib
    from pathlib import Path

    from flatland import UserError, runner
    from flatland.config import from_dict

    cfg = tomllib.loads((Path(__file__).parents[1] / "examples" / "psp.toml").read_text())
    cfg["learner"]["tau"] = 0.0
    cfg["run"].update(steps=100, log_every=50, checkpoint_every=100, snapshot_every=100)
    with pytest.raises(UserError, match=r"^\[learner\] gda: tau must be > 0 \(the component declares it "
                                        r"positive\), got 0\.0$"):
        runner.run(from_dict(cfg), tmp_path / "out", progress=False, figures=False)
    assert not (tmp_path / "out").exists()
