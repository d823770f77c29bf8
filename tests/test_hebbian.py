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
