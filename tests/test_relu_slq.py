"""Full-Hessian SLQ (plugins/relu/slq.py, matfree) against dense jax.hessian + eigh.

Tolerances and why:
* top-5 eigenvalues and λ_min to 1e-6 relative (the issue's figure): with full
  reorthogonalisation the Ritz values converge to round-off here (P ≤ 2,000,
  200 steps); the residual bound β_k|e_kᵀy| certifies it in the same run.
* tr H exact to 1e-12 relative (gn_trace, diag R = 0 for ReLU); the Hutchinson
  estimate within 5 standard errors (a t-statistic with n_probes − 1 = 9 degrees
  of freedom exceeds 5 with probability < 1e-3; the seed is fixed).
* density: W₁(SLQ measure, exact eigenvalue measure) / (λ_max − λ_min) within
  ``slq.w1_bound`` — (P_active/P)(π/(4k) + sampling term): Gauss quadrature
  with k nodes is exact for degree 2k − 1 (Jackson: ≤ πw/(4k) per probe), and
  Rademacher probes give an expected sampling term ≤
  ∫√(2 min(F, 1 − F))dx/√(n_probes·P_active) (see slq.py). That bounds the
  *expected* distance; the fixed seed's realisation is ~10% of it. The same
  check rejects a wrong measure (equal weights on the same nodes), so it can fail.
"""
import types

import numpy as np
import pytest
import jax

import flatland
from flatland import UserError
from flatland_plugins.relu import hessian as HS, slq as S
from flatland_plugins.relu.extension import ReluRun
from flatland_plugins.relu.network import flatten, unflatten


def _dense_eigs(loss, spec, p):
    H = jax.jit(jax.hessian(lambda th: loss(unflatten(th, spec))))(flatten(p))
    return np.linalg.eigvalsh(np.asarray(H))


@pytest.fixture(scope="module")
def small(small_relu_net):
    """P = 216 with a dead unit (exercises the active-block mask and the breakdown cut)."""
    loss, ctx, p = small_relu_net
    e = _dense_eigs(loss, ctx["spec"], p)
    return ctx, p, e, HS.functionals(p, ctx, method="slq")


def test_extremes_match_dense_eigh(small):
    ctx, p, e, f = small
    assert e[0] < 0 < e[-1]                                          # an indefinite H: λ_min is a real test
    assert f["structural_zeros"] >= ctx["spec"].per_unit              # the dead unit is masked out
    top = f["ritz"][-5:]
    assert np.all(np.abs(top / e[-5:] - 1) <= 1e-6)
    assert f["lambda_max"] == top[-1]
    assert abs(f["lambda_min"] - e[0]) <= 1e-6 * (e[-1] - e[0])
    # Ritz values interlace, and each lies within its residual bound of an eigenvalue
    assert f["lambda_max"] <= e[-1] * (1 + 1e-12) and f["lambda_min"] >= e[0] - 1e-12 * e[-1]
    dist = np.min(np.abs(f["ritz"][:, None] - e[None, :]), axis=1)
    assert np.all(dist <= f["ritz_residual"] + 1e-10 * e[-1])


def test_trace_exact_and_hutchinson(small):
    _ctx, _p, e, f = small
    assert f["trace"] == pytest.approx(e.sum(), rel=1e-12)
    assert abs(f["trace_slq"] - e.sum()) <= 5 * f["trace_slq_sem"]
    assert f["n_zero_is_lower_bound"] and f["n_zero"] <= int(np.sum(np.abs(e) <= f["tol"]))


def test_density_wasserstein_within_slq_bound(small):
    _ctx, _p, e, f = small
    width = e[-1] - e[0]
    assert f["weights"].sum() == pytest.approx(1.0, abs=1e-12)
    assert f["weights"][f["nodes"] == 0].sum() >= f["structural_zeros"] / f["n_params"] - 1e-15
    d = S.wasserstein1(f["nodes"], f["weights"], e) / width
    bound = S.w1_bound(f, e)
    assert bound < 0.02                                # a bound worth having at these k and probe counts
    assert d <= bound
    wrong = S.wasserstein1(f["nodes"], np.full(f["nodes"].size, 1 / f["nodes"].size), e) / width
    assert wrong > bound                               # the distance does discriminate
    # the smoothed density: ‖(μ̂ − μ) * g_σ‖₁ ≤ W₁ ‖g_σ'‖₁ = W₁ √(2/π)/σ (grid covers the spectrum ± 4σ)
    exact = S.smoothed_density(e, np.full(e.size, 1 / e.size), f["grid"], f["sigma"])
    l1 = np.trapezoid(np.abs(f["density"] - exact), f["grid"])
    assert l1 <= d * width * np.sqrt(2 / np.pi) / f["sigma"] + 1e-3
    assert np.trapezoid(f["density"], f["grid"]) == pytest.approx(1.0, abs=1e-3)


def test_negative_count_bounds(small):
    """n_negative (Ritz values below −tol) is a lower bound; the SLQ CDF bracket holds up to sampling error.

    The bracket (Chebyshev–Markov–Stieltjes, per probe) is exact for the probes'
    weighted measures; those differ from the spectrum's distribution function F
    by at most 4 of their standard deviations √(2 min(F_a, 1 − F_a)/(n_probes·P_active))
    (F_a: the active block's; times P_active/P), which is the slack allowed here.
    """
    _ctx, _p, e, f = small
    assert f["n_negative"] <= int(np.sum(e < -f["tol"]))
    lo, hi = f["n_negative_slq_range"]
    assert lo <= f["n_negative_slq"] <= hi
    frac = f["solved_size"] / f["n_params"]
    for x in np.quantile(e, [0.05, 0.25, 0.5, 0.75, 0.95]) + 1e-9:
        F = np.mean(e < x)
        Fa = (F - (1 - frac) * (x > 0)) / frac          # the active block's distribution function
        est, lo, hi = S.mass_below(f, x)
        slack = 4 * frac * np.sqrt(2 * max(min(Fa, 1 - Fa), 0) / (f["n_probes"] * f["solved_size"])) + 1e-12
        assert lo - slack <= F <= hi + slack
        assert lo <= est <= hi


def test_extension_accepts_slq():
    ext = ReluRun()
    ctx = types.SimpleNamespace(options={"step": "dense", "hessian": "slq", "hessian_every": 0},
                                run={"snapshot_every": 10})
    ext.check(ctx)
    ctx.options["hessian"] = "sql"
    with pytest.raises(UserError, match="slq"):
        ext.check(ctx)


@pytest.mark.slow  # dense jax.hessian + eigh at P = 1,980 takes ~10 s here: CI's second stage runs it
def test_validation_at_p_2000():
    """18 → 55 → 17 (P = 1,980), T = 150, init plus 10 GD steps: an indefinite full Hessian."""
    reg = flatland.assemble(strict=True).registry
    loss = reg.create("losses", "corridor", seed=0, n_hid=55)
    ctx = loss.extras["relu"]
    spec = ctx["spec"]
    assert spec.n_params == 1980
    p = loss.init(jax.random.key(0))
    g = jax.jit(jax.grad(loss))
    for _ in range(10):
        p = jax.tree_util.tree_map(lambda a, b: a - 0.1 * b, p, g(p))
    e = np.linalg.eigvalsh(np.asarray(HS.full_hessian(p, ctx["X"], ctx["Y"], spec, ctx["kappa"])))
    assert e[0] < 0 < e[-1]
    r = S.spectrum(p, ctx)
    width = e[-1] - e[0]
    assert np.all(np.abs(r["ritz"][-5:] / e[-5:] - 1) <= 1e-6)
    assert abs(r["lambda_min"] - e[0]) <= 1e-6 * width
    assert r["lambda_max_residual"] <= 1e-6 * width and r["lambda_min_residual"] <= 1e-6 * width
    assert r["trace"] == pytest.approx(e.sum(), rel=1e-12)
    assert abs(r["trace_slq"] - e.sum()) <= 5 * r["trace_slq_sem"]
    assert S.wasserstein1(r["nodes"], r["weights"], e) / width <= S.w1_bound(r, e)
