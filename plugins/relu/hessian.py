"""Exact Hessian functionals of the network's loss at full size, by structure.

What: ``functionals(params, ctx)`` (host side, any size) and ``gn_functionals``
(pure JAX, for logging inside the compiled loop), returning the trace, the
number of zero eigenvalues at a stated tolerance, Σ log of the eigenvalues above
it, λ_max and the spectrum. ``full_hessian``/``dense_eigh`` are the reference
(``jax.hessian`` + ``eigh``) used to verify on small nets; ``lanczos`` is the
matrix-free fallback.

Why it is cheap. With L = κ Σ_tk r_tk², ∇²L = 2κ (JᵀJ + R), R = Σ r ∇²r.

* Gauss–Newton part. Its nonzero spectrum equals that of the Gram matrix
  K = J Jᵀ (size T·d_out = 2,550 for Fig 2), assembled from the structure of
  the network without forming J (18,000 columns):
  K[(t,k),(s,l)] = δ_kl (h hᵀ)_ts + (x̃_t·x̃_s) Σ_j V_kj V_lj g_tj g_sj,
  with h = σ(z), g = σ'(z), x̃ = [x, 1]. When the active units own fewer
  parameters than T·d_out, JᵀJ restricted to them is smaller and is used
  instead. Inactive ReLU units have h = g = 0 on every input: their
  d_in + 1 + d_out parameters are exact zero rows (and are dropped).
* Residual part. R is block-diagonal over hidden units (second derivatives of
  r never couple two units); for ReLU each 36×36 block is [[0, C_j], [C_jᵀ, 0]]
  with C_j = Σ_t r_t (g_tj x̃_t)ᵀ, so diag R = 0 and tr H = tr GN exactly. By
  Weyl's inequality every sorted eigenvalue of the full H lies within
  ε_R = 2κ max_j ‖R_j‖₂ of the Gauss–Newton one; ``eps_R`` is reported with
  every result. On the loss plateau ε_R is small, and the GN functionals are
  then the full-Hessian ones up to ε_R (counts of zeros agree whenever no GN
  eigenvalue lies within ε_R of the tolerance).

* Exact null directions. Two kinds of direction are null vectors of the full H
  at *every* point, not only on Γ: the d_in + 1 + d_out parameters of an
  inactive unit (exact zero rows), and, for an active unit j, every change of
  its input weights orthogonal to the inputs x̃_t it is active on (J's column
  is Σ g_tj x̃_t·δw = 0 and so is R_j's, whose W-part is also built from those
  x̃_t). A third kind appears when the active units' activation vectors h_j (over
  the inputs) are linearly dependent — e.g. two units that fire on one and the
  same input only: output-weight changes along the dependency leave every
  output unchanged, and are null vectors of H where the residual coupling C_j
  annihilates them too (d_out − 1 of them for that pair). ``exact_null_dimension``
  counts all three, Σ_j (d_in + 1 − r_j) + d_out·[r_j = 0] + n_dep with r_j the
  rank of unit j's active inputs. It is the full Hessian's zero count whenever
  nothing else is exactly null; the rescaling symmetry of an
  active unit (W_j, b_j) → αW_j, V_j → V_j/α is null only at a stationary point
  (H v = −(Dv)ᵀ∇L), so off one it gives small, not zero, eigenvalues. The relu
  check suite compares this count with a dense ``eigh`` at round-off tolerance.

So: ``method="gauss-newton"`` is exact for the GN matrix 2κJᵀJ at any size;
``method="full"`` is the exact full Hessian (dense ``eigh`` of the active-unit
block, for P_active ≤ ``max_dense``); ``method="lanczos"`` gives λ_max of the
full H matrix-free and a structural lower bound on the zero count;
``method="slq"`` (:mod:`.slq`, matfree) is the full H matrix-free at any size:
λ_max and λ_min as Ritz values with residual bounds, tr H exact, and the
spectral density by stochastic Lanczos quadrature. Everything is
computed in float64 whatever the training dtype.

Tolerance: an eigenvalue is zero when |λ| ≤ tol = rtol·λ_max, rtol default
P·ε_float64 (numpy's matrix_rank convention), stated in the result.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import jax
import jax.numpy as jnp

from .network import NetSpec, activation_fn, flatten, unflatten

EPS64 = float(np.finfo(np.float64).eps)


def _parts(params, X, spec: NetSpec):
    """z, h = σ(z), g = σ'(z), σ''(z) and x̃ = [x, 1] in float64."""
    p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    X = jnp.asarray(X, jnp.float64)
    z = X @ p["W"].T + p["b"]
    act = activation_fn(spec)
    h = act(z)
    d1 = jax.vmap(jax.vmap(jax.grad(act)))(z) if spec.activation != "relu" else (z > 0).astype(z.dtype)
    d2 = jax.vmap(jax.vmap(jax.grad(jax.grad(act))))(z) if spec.activation in ("softplus", "tanh") else jnp.zeros_like(z)
    Xt = jnp.concatenate([X, jnp.ones((X.shape[0], 1), X.dtype)], axis=1)
    return p, z, h, d1, d2, Xt


_parts_jit = jax.jit(_parts, static_argnums=2)


def _np_parts(params, X, spec):
    """:func:`_parts` compiled once per spec, returned as host numpy arrays."""
    return jax.tree_util.tree_map(np.asarray, _parts_jit(params, X, spec))


@partial(jax.jit, static_argnums=2)
def gram(params, X, spec: NetSpec):
    """K = J Jᵀ, shape (T·d_out, T·d_out), rows ordered (t, k)."""
    p, _z, h, g, _d2, Xt = _parts(params, X, spec)
    T, d = X.shape[0], spec.d_out
    Gv = (g[:, None, :] * p["V"][None, :, :]).reshape(T * d, spec.n_hid)
    A = (Gv @ Gv.T).reshape(T, d, T, d) * (Xt @ Xt.T)[:, None, :, None]
    A = A + (h @ h.T)[:, None, :, None] * jnp.eye(d, dtype=A.dtype)[None, :, None, :]
    return A.reshape(T * d, T * d)


def jacobian(params, X, spec: NetSpec, units=None, xp=jnp):
    """Explicit residual Jacobian J, (T·d_out, n_units·(d_in+1+d_out)), columns in ``flatten`` order.

    ``units`` (host index array) restricts it to those hidden units' parameters;
    ``xp=np`` builds it on the host in numpy (no compilation per shape).
    """
    p, _z, h, g, _d2, Xt = _np_parts(params, X, spec) if xp is np else _parts(params, X, spec)
    V = p["V"]
    if units is not None:
        h, g, V = h[:, units], g[:, units], V[:, units]
    T, d, n = X.shape[0], spec.d_out, h.shape[1]
    jw = (V[None, :, :, None] * g[:, None, :, None]) * Xt[:, None, None, :]  # (T, d, n, d_in+1)
    jv = h[:, None, :, None] * xp.eye(d, dtype=h.dtype)[None, :, None, :]  # (T, d, n, d)
    return xp.concatenate([jw, jv], axis=3).reshape(T * d, n * spec.per_unit)


@partial(jax.jit, static_argnums=2)
def gn_trace(params, X, spec: NetSpec, kappa):
    """tr(2κ JᵀJ) = 2κ‖J‖_F², which for ReLU is also tr of the full Hessian."""
    p, _z, h, g, _d2, Xt = _parts(params, X, spec)
    fro = spec.d_out * jnp.sum(h * h) + jnp.sum((g * g) @ (p["V"] ** 2).T * jnp.sum(Xt * Xt, 1)[:, None])
    return 2 * kappa * fro


@partial(jax.jit, static_argnums=3)
def residual_bound(params, X, Y, spec: NetSpec, kappa):
    """ε_R = 2κ max_j ‖R_j‖₂: the largest eigenvalue shift of the full H from GN (Weyl)."""
    p, _z, h, g, d2, Xt = _parts(params, X, spec)
    r = h @ p["V"].T - jnp.asarray(Y, jnp.float64)                       # (T, d)
    C = jnp.einsum("tk,tj,tl->jkl", r, g, Xt)                             # (n, d, d_in+1)
    D = jnp.einsum("tk,kj,tj,tl,tm->jlm", r, p["V"], d2, Xt, Xt)         # (n, d_in+1, d_in+1)
    d, q = spec.d_out, Xt.shape[1]
    blocks = jnp.zeros((spec.n_hid, q + d, q + d))
    blocks = blocks.at[:, :q, q:].set(jnp.swapaxes(C, 1, 2)).at[:, q:, :q].set(C).at[:, :q, :q].set(D)
    return 2 * kappa * jnp.max(jnp.abs(jnp.linalg.eigvalsh(blocks)))


def exact_null_dimension(params, X, Y, spec: NetSpec) -> int:
    """The full Hessian's exact null directions (module doc): Σ_j (d_in + 1 − r_j) + d_out·[r_j = 0] + n_dep.

    r_j is the rank of [x_t, 1] over the inputs where ReLU unit j is active; n_dep counts the output-weight
    changes along linear dependencies of the active units' activation vectors (``_dependent_outputs``).
    Defined for ReLU only (other activations have no exactly inactive region).
    """
    if spec.activation != "relu":
        raise ValueError(f"exact_null_dimension is defined for ReLU, not {spec.activation!r}")
    X = np.asarray(X, np.float64)
    z = X @ np.asarray(params["W"], np.float64).T + np.asarray(params["b"], np.float64)
    Xt = np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)
    total = 0
    for active in (z > 0).T:
        r = int(np.linalg.matrix_rank(Xt[active])) if active.any() else 0
        total += Xt.shape[1] - r + (spec.d_out if r == 0 else 0)
    return total + _dependent_outputs(params, Xt, z, np.asarray(Y, np.float64))


def _dependent_outputs(params, Xt, z, Y) -> int:
    """Null directions δV (input weights fixed) from linearly dependent activation vectors of active units.

    J's columns for unit j's output weights are h_j ⊗ I (h_j = relu(z_:j) over the inputs), so every δV
    with Σ_j δV_j h_tj = 0 for all t — δV = U Bᵀ, B a basis of the null space of [h_j] — is a null
    vector of JᵀJ. R (block-diagonal, [[0, C_j], [C_jᵀ, 0]] per unit) maps it to the input weights,
    C_jᵀ δV_j, so it is a null vector of H when C_jᵀ U B_j = 0 for every unit: a linear system on U. Two
    units active on one and the same input only (seen on the relu suite's seed-1 nets under update noise) give
    d_out − 1 such directions; independent activation vectors give none."""
    V = np.asarray(params["V"], np.float64)
    active = np.nonzero((z > 0).any(0))[0]
    if active.size < 2:
        return 0
    h = np.maximum(z[:, active], 0.0)
    _, sv, vt = np.linalg.svd(h, full_matrices=True)
    rank = int(np.sum(sv > sv.max() * max(h.shape) * np.finfo(np.float64).eps))
    B = vt[rank:].T                                                  # (active units, m): null space of h
    if B.shape[1] == 0:
        return 0
    r = np.maximum(z, 0.0) @ V.T - Y                                  # residuals (T, d_out)
    C = np.einsum("tk,tj,tl->jkl", r, (z[:, active] > 0).astype(float), Xt)  # (active units, d_out, d_in+1)
    d_out, m = V.shape[0], B.shape[1]
    # vec(C_jᵀ U b_j) = (b_jᵀ ⊗ C_jᵀ) vec(U), with vec stacking U's columns
    M = np.concatenate([np.kron(B[j][None, :], C[j].T) for j in range(active.size)], axis=0)
    return d_out * m - int(np.linalg.matrix_rank(M))


def _summarise(eigs, n_total, rtol=None, extra=None):
    """Trace, zero count, Σ log nonzero and λ_max of a spectrum with ``n_total − len(eigs)`` implicit zeros."""
    eigs = np.sort(np.asarray(eigs, np.float64))
    lmax = float(eigs[-1]) if eigs.size else 0.0
    rtol = n_total * EPS64 if rtol is None else float(rtol)
    tol = rtol * max(lmax, 0.0)
    zero = np.abs(eigs) <= tol
    pos = eigs > tol
    out = {
        "trace": float(eigs.sum()),
        "n_zero": int(zero.sum() + (n_total - eigs.size)),
        "n_negative": int((eigs < -tol).sum()),
        "sum_log": float(np.sum(np.log(eigs[pos]))),
        "lambda_max": lmax,
        "tol": tol,
        "rtol": rtol,
        "n_params": int(n_total),
    }
    out.update(extra or {})
    out["eigenvalues"] = eigs[np.abs(eigs) > tol]
    return out


def full_hessian(params, X, Y, spec: NetSpec, kappa, units=None):
    """Dense full Hessian of κ‖f(X) − Y‖² w.r.t. the (selected units') params, flatten order, float64."""
    p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    theta = flatten(p)
    per = spec.per_unit
    if units is None:
        units = np.arange(spec.n_hid)
    idx = jnp.asarray((np.asarray(units)[:, None] * per + np.arange(per)[None, :]).reshape(-1))
    return _sub_hessian(theta, idx, jnp.asarray(X, jnp.float64), jnp.asarray(Y, jnp.float64), spec, kappa)


@partial(jax.jit, static_argnums=4)
def _sub_hessian(theta, idx, X, Y, spec, kappa):
    act = activation_fn(spec)

    def loss_sub(sub):
        q = unflatten(theta.at[idx].set(sub), spec)
        r = act(X @ q["W"].T + q["b"]) @ q["V"].T - Y
        return kappa * jnp.sum(r * r)

    return jax.hessian(loss_sub)(theta[idx])


def functionals(params, ctx, method="gauss-newton", rtol=None, max_dense=6000, lanczos_steps=200,
                slq_order=None, n_probes=None, seed=0):
    """Hessian functionals on the host (see module doc). ``ctx`` is the loss's ``extras["relu"]``.

    ``method="slq"`` (full Hessian, matrix-free, :func:`.slq.spectrum` with
    ``order=lanczos_steps``, ``slq_order``, ``n_probes``, ``seed``; None: that
    module's defaults). Exact: ``trace`` (= tr GN for ReLU), ``n_zero`` as a
    lower bound (``exact_null``, the structural null directions;
    ``n_zero_is_lower_bound``). Rigorous up to convergence: ``lambda_max`` and
    ``lambda_min`` are extreme Ritz values (θ_max ≤ λ_max, θ_min ≥ λ_min), each
    within ``lambda_max_residual`` / ``lambda_min_residual`` of an eigenvalue.
    ``n_negative`` counts Ritz values below −tol, a lower bound (θ_i ≥ λ_i from
    the bottom; ``n_negative_is_lower_bound``). Estimated (stochastic):
    ``n_negative_slq`` (P × the SLQ mass below −tol) with its quadrature bracket
    ``n_negative_slq_range`` (:func:`.slq.mass_below`; wide, as most eigenvalues
    sit near 0), ``trace_slq`` ± ``trace_slq_sem``, and the density (``nodes``,
    ``weights``, ``grid``, ``density``).
    ``eigenvalues`` are the Ritz values; ``sum_log`` is not computed (NaN).
    """
    spec, X, Y, kappa = ctx["spec"], ctx["X"], ctx["Y"], ctx["kappa"]
    P = spec.n_params
    m = X.shape[0] * spec.d_out
    z = np.asarray(X, np.float64) @ np.asarray(params["W"], np.float64).T + np.asarray(params["b"], np.float64)
    units = np.nonzero((z > 0).any(0))[0] if spec.activation == "relu" else np.arange(spec.n_hid)
    P_a = units.size * spec.per_unit
    eps_R = float(residual_bound(params, X, Y, spec, kappa))
    info = {"method": method, "active_units": int(units.size), "eps_R": eps_R,
            "structural_zeros": int(P - P_a)}
    if spec.activation == "relu":
        info["exact_null"] = exact_null_dimension(params, X, Y, spec)
    if method == "full" and P_a > max_dense:
        # too large for a dense eigh: fall back to the Gauss–Newton path and say so in the row
        # (the full Hessian's exact zero count is still ``exact_null``)
        out = functionals(params, ctx, "gauss-newton", rtol, max_dense, lanczos_steps)
        out["method"] = f"{out['method']} (full: {P_a} active parameters > max_dense {max_dense})"
        return out
    if method == "full":
        H = np.asarray(full_hessian(params, X, Y, spec, kappa, units)) if P_a else np.zeros((0, 0))
        return _summarise(np.linalg.eigvalsh(H) if P_a else [], P, rtol, info | {"solved_size": P_a})
    if method == "gauss-newton" and min(P_a, m) <= max_dense:
        if P_a == 0:
            return _summarise([], P, rtol, info | {"solved_size": 0})
        if P_a < m:
            J = jacobian(params, X, spec, units, xp=np)
            M = 2 * kappa * (J.T @ J)
        else:
            M = 2 * kappa * np.asarray(gram(params, X, spec))
        return _summarise(np.linalg.eigvalsh(M), P, rtol, info | {"solved_size": M.shape[0]})
    if method == "slq":
        from .slq import mass_below, spectrum
        opts = {k: v for k, v in (("slq_order", slq_order), ("n_probes", n_probes)) if v is not None}
        sp = spectrum(params, ctx, order=lanczos_steps, seed=seed, **opts)
        lmax = sp["lambda_max"]
        rt = P * EPS64 if rtol is None else float(rtol)
        tol = rt * max(lmax, 0.0)
        neg = mass_below(sp, -tol)
        return sp | info | {
            "n_zero": info.get("exact_null", int(P - P_a)), "n_zero_is_lower_bound": True,
            "n_negative": int((sp["ritz"] < -tol).sum()), "n_negative_is_lower_bound": True,
            "n_negative_slq": P * neg[0], "n_negative_slq_range": (P * neg[1], P * neg[2]),
            "sum_log": float("nan"), "tol": tol, "rtol": rt, "eigenvalues": sp["ritz"], "method": "slq"}
    # Lanczos fallback: full Hessian, matrix-free; zero count is the exact-null lower bound.
    ritz = lanczos(params, X, Y, spec, kappa, lanczos_steps)
    lmax = float(ritz.max())
    rt = P * EPS64 if rtol is None else float(rtol)
    return {"trace": float(gn_trace(params, X, spec, kappa)), "n_zero": info.get("exact_null", int(P - P_a)),
            "n_zero_is_lower_bound": True,
            "n_negative": int((ritz < -rt * lmax).sum()), "sum_log": float("nan"), "lambda_max": lmax,
            "tol": rt * lmax, "rtol": rt, "n_params": P, "eigenvalues": np.sort(ritz), **info, "method": "lanczos"}


def lanczos(params, X, Y, spec: NetSpec, kappa, steps=200, seed=0):
    """Ritz values of the full Hessian after ``steps`` Lanczos steps with full reorthogonalisation."""
    p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    theta = flatten(p)
    X, Y = jnp.asarray(X, jnp.float64), jnp.asarray(Y, jnp.float64)
    act = activation_fn(spec)

    def loss(th):
        q = unflatten(th, spec)
        r = act(X @ q["W"].T + q["b"]) @ q["V"].T - Y
        return kappa * jnp.sum(r * r)

    hvp = jax.jit(lambda v: jax.jvp(jax.grad(loss), (theta,), (v,))[1])
    n = theta.size
    k = min(steps, n)
    Q = np.zeros((k + 1, n))
    q = np.random.default_rng(seed).standard_normal(n)
    Q[0] = q / np.linalg.norm(q)
    alpha, beta = np.zeros(k), np.zeros(k)
    for i in range(k):
        w = np.array(hvp(jnp.asarray(Q[i])))
        alpha[i] = w @ Q[i]
        w -= Q[: i + 1].T @ (Q[: i + 1] @ w)
        w -= Q[: i + 1].T @ (Q[: i + 1] @ w)
        beta[i] = np.linalg.norm(w)
        if beta[i] < 1e-14 * max(1.0, abs(alpha[: i + 1]).max()):
            k = i + 1
            break
        Q[i + 1] = w / beta[i]
    Tm = np.diag(alpha[:k]) + np.diag(beta[: k - 1], 1) + np.diag(beta[: k - 1], -1)
    return np.linalg.eigvalsh(Tm)


def gn_functionals(params, ctx, rtol=None):
    """Gauss–Newton functionals as pure JAX (static size min(P, T·d_out)), for in-loop logging.

    Returns trace, n_zero, sum_log, lambda_max (float64 scalars). Inactive ReLU
    units' rows are exactly zero and count among the zeros automatically.
    """
    spec, X, kappa = ctx["spec"], ctx["X"], ctx["kappa"]
    P = spec.n_params
    m = X.shape[0] * spec.d_out
    if P <= m:
        J = jacobian(params, X, spec)
        M = 2 * kappa * (J.T @ J)
    else:
        M = 2 * kappa * gram(params, X, spec)
    eigs = jnp.linalg.eigvalsh(M)
    lmax = eigs[-1]
    rt = P * EPS64 if rtol is None else rtol
    tol = rt * jnp.maximum(lmax, 0.0)
    pos = eigs > tol
    return {
        "hess_trace": jnp.sum(eigs),
        "hess_n_zero": jnp.sum(jnp.abs(eigs) <= tol) + (P - M.shape[0]),
        "hess_sum_log": jnp.sum(jnp.where(pos, jnp.log(jnp.where(pos, eigs, 1.0)), 0.0)),
        "hess_lambda_max": lmax,
    }
