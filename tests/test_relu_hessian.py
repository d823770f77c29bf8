"""Hessian functionals: structure (Gram, Jacobian, trace, Weyl bound) against dense jax.hessian + eigh."""
import numpy as np
import pytest
import jax

import flatland
from flatland_plugins.relu import hessian as HS
from flatland_plugins.relu.network import flatten, unflatten


@pytest.fixture(scope="module")
def small(small_relu_net):
    return small_relu_net  # one unit dead: exact zero rows


def test_gram_and_jacobian_match_autodiff(small):
    loss, ctx, p = small
    spec = ctx["spec"]
    J = np.asarray(jax.jacfwd(lambda th: loss.residuals(unflatten(th, spec)).reshape(-1))(flatten(p)))
    assert np.allclose(np.asarray(HS.jacobian(p, ctx["X"], spec)), J, atol=1e-13)
    assert np.allclose(np.asarray(HS.jacobian(p, ctx["X"], spec, xp=np)), J, atol=1e-13)
    assert np.allclose(np.asarray(HS.gram(p, ctx["X"], spec)), J @ J.T, atol=1e-12)
    assert float(HS.gn_trace(p, ctx["X"], spec, ctx["kappa"])) == pytest.approx(2 * ctx["kappa"] * np.sum(J * J))


@pytest.mark.slow  # a long scientific comparison: CI's second stage runs it
def test_full_hessian_dense_reference(small):
    loss, ctx, p = small
    spec = ctx["spec"]
    H = np.asarray(jax.hessian(lambda th: loss(unflatten(th, spec)))(flatten(p)))
    e = np.linalg.eigvalsh(H)
    full = HS.functionals(p, ctx, method="full")
    # structural zeros of the dead unit are dropped from the solve, then counted
    dead = int(np.sum(~(np.asarray(ctx["X"] @ p["W"].T + p["b"]) > 0).any(0)))
    assert dead >= 1
    assert full["structural_zeros"] == dead * spec.per_unit
    assert full["solved_size"] == (spec.n_hid - dead) * spec.per_unit
    assert full["trace"] == pytest.approx(np.trace(H), rel=1e-12)
    assert full["lambda_max"] == pytest.approx(e[-1], rel=1e-10)
    tol = full["tol"]
    assert full["n_zero"] == int(np.sum(np.abs(e) <= tol))
    assert full["n_zero"] >= spec.per_unit
    # eigenvalues just above tol carry absolute round-off ~ε·λ_max, so their logs agree only to ~1e-4 each
    assert full["sum_log"] == pytest.approx(np.sum(np.log(e[e > tol])), rel=1e-6)


def test_gauss_newton_exact_and_weyl_bound(small):
    loss, ctx, p = small
    spec = ctx["spec"]
    H = np.asarray(jax.hessian(lambda th: loss(unflatten(th, spec)))(flatten(p)))
    J = np.asarray(jax.jacfwd(lambda th: loss.residuals(unflatten(th, spec)).reshape(-1))(flatten(p)))
    GN = 2 * ctx["kappa"] * J.T @ J
    e_gn, e_h = np.linalg.eigvalsh(GN), np.linalg.eigvalsh(H)
    gn = HS.functionals(p, ctx, method="gauss-newton")
    assert gn["lambda_max"] == pytest.approx(e_gn[-1], rel=1e-10)
    assert gn["n_zero"] == int(np.sum(np.abs(e_gn) <= gn["tol"]))
    assert gn["trace"] == pytest.approx(np.trace(H), rel=1e-10)  # diag of the residual term is 0 for ReLU
    eps = gn["eps_R"]
    assert np.linalg.norm(H - GN, 2) == pytest.approx(eps, rel=1e-8)
    assert np.max(np.abs(e_h - e_gn)) <= eps * (1 + 1e-9)      # Weyl
    jg = HS.gn_functionals(p, ctx)                                # in-loop (jit) version agrees
    assert float(jg["hess_lambda_max"]) == pytest.approx(gn["lambda_max"], rel=1e-10)
    assert int(jg["hess_n_zero"]) == gn["n_zero"]


def test_gram_path_equals_small_side_path():
    """T·d_out < P: the Gram (T·d_out) path has the GN spectrum of the P×P path."""
    reg = flatland.assemble(strict=True).registry
    loss = reg.create("losses", "corridor", seed=1, n_hid=10, T=8, n_rays=5)  # m = 40 < P = 120
    ctx = loss.extras["relu"]
    p = loss.init(jax.random.key(2))
    spec = ctx["spec"]
    J = np.asarray(HS.jacobian(p, ctx["X"], spec, xp=np))
    e = np.linalg.eigvalsh(2 * ctx["kappa"] * J.T @ J)
    f = HS.functionals(p, ctx, method="gauss-newton")
    assert f["solved_size"] == 40
    assert f["lambda_max"] == pytest.approx(e[-1], rel=1e-10)
    assert f["n_zero"] == int(np.sum(np.abs(e) <= f["tol"]))
    assert f["sum_log"] == pytest.approx(np.sum(np.log(e[e > f["tol"]])), rel=1e-8)


@pytest.mark.slow  # Lanczos against dense eigh on the network: CI's second stage runs it
def test_lanczos_lambda_max(small):
    loss, ctx, p = small
    spec = ctx["spec"]
    H = np.asarray(jax.hessian(lambda th: loss(unflatten(th, spec)))(flatten(p)))
    lz = HS.functionals(p, ctx, method="lanczos", lanczos_steps=60)
    assert lz["lambda_max"] == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-8)
    dead = int(np.sum(~(np.asarray(ctx["X"] @ p["W"].T + p["b"]) > 0).any(0)))
    assert lz["n_zero_is_lower_bound"] and lz["n_zero"] == HS.exact_null_dimension(p, ctx["X"], ctx["Y"], spec)
    assert lz["n_zero"] >= dead * spec.per_unit


def test_exact_null_dimension_is_the_dense_zero_count():
    """Dense eigh at round-off tolerance counts exactly the predicted null directions.

    One unit is dead (d_in+1+d_out exact zero rows) and one fires on only a few
    inputs (its input weights orthogonal to them are null too), so the count
    exceeds (d_in+1+d_out)·dead — the statement the relu suite used to check.
    """
    reg = flatland.assemble(strict=True).registry
    loss = reg.create("losses", "corridor", seed=2, n_hid=5, T=40)
    ctx = loss.extras["relu"]
    spec = ctx["spec"]
    p = loss.init(jax.random.key(3))
    z = np.asarray(ctx["X"] @ p["W"].T + p["b"])
    b = np.asarray(p["b"]).copy()
    b[0] = -50.0                                      # dead
    b[1] -= np.sort(z[:, 1])[-4]                       # fires on exactly 3 inputs
    p = dict(p, b=jax.numpy.asarray(b))
    e = np.sort(np.abs(np.linalg.eigvalsh(np.asarray(jax.hessian(lambda th: loss(unflatten(th, spec)))(flatten(p))))))
    n_zero = int(np.sum(e <= 10 * np.finfo(float).eps * e[-1]))
    predicted = HS.exact_null_dimension(p, ctx["X"], ctx["Y"], spec)
    assert predicted >= spec.per_unit + (spec.d_in + 1 - 3)  # the corridor's smooth views are rank-poor too
    assert n_zero == predicted
    assert e[n_zero] > 1e3 * np.finfo(float).eps * e[-1]   # a clear gap above the counted zeros


def test_two_units_firing_on_one_and_the_same_input_add_d_out_minus_1_null_directions():
    """Found on the relu suite's seed-1 nets (2026-12-05): two units each active on one and the same input
    only. Their output weights can trade along h_1 ∝ h_2 without changing any output, and the residual
    coupling removes one of those d_out directions: 16 zero eigenvalues (d_out = 17) that the per-unit count
    missed, so the check failed. The dense count equals the prediction with them, and not without."""
    reg = flatland.assemble(strict=True).registry
    loss = reg.create("losses", "corridor", seed=2, n_hid=5, T=40)
    ctx = loss.extras["relu"]
    spec = ctx["spec"]
    p = loss.init(jax.random.key(3))
    W, b = np.asarray(p["W"]).copy(), np.asarray(p["b"]).copy()
    W[2] = 2 * W[1]                                    # the same ordering of the inputs ...
    z = np.asarray(ctx["X"]) @ W.T
    for j in (1, 2):                                   # ... and each fires on its top input only
        b[j] = -0.5 * (np.sort(z[:, j])[-1] + np.sort(z[:, j])[-2])
    p = dict(p, W=jax.numpy.asarray(W), b=jax.numpy.asarray(b))
    assert (np.asarray(ctx["X"]) @ W.T + b > 0)[:, 1:3].sum(0).tolist() == [1, 1]
    e = np.sort(np.abs(np.linalg.eigvalsh(np.asarray(jax.hessian(lambda th: loss(unflatten(th, spec)))(flatten(p))))))
    n_zero = int(np.sum(e <= 10 * np.finfo(float).eps * e[-1]))
    predicted = HS.exact_null_dimension(p, ctx["X"], ctx["Y"], spec)
    zt = np.asarray(ctx["X"]) @ W.T + b
    assert HS._dependent_outputs(p, np.c_[ctx["X"], np.ones(len(zt))], zt, np.asarray(ctx["Y"])) == spec.d_out - 1
    assert n_zero == predicted
    assert e[n_zero] > 1e3 * np.finfo(float).eps * e[-1]


def test_full_too_large_falls_back_to_gauss_newton_and_says_so():
    reg = flatland.assemble(strict=True).registry
    loss = reg.create("losses", "corridor", seed=1, n_hid=10, T=8, n_rays=5)  # m = 40 < P = 120
    ctx = loss.extras["relu"]
    p = loss.init(jax.random.key(2))
    f = HS.functionals(p, ctx, method="full", max_dense=50)
    gn = HS.functionals(p, ctx, method="gauss-newton", max_dense=50)
    assert f["method"].startswith("gauss-newton (full: ") and "> max_dense 50" in f["method"]
    assert f["n_zero"] == gn["n_zero"] and f["lambda_max"] == gn["lambda_max"]
    assert f["exact_null"] == HS.exact_null_dimension(p, ctx["X"], ctx["Y"], ctx["spec"])
