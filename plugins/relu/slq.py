"""Full-Hessian spectrum matrix-free: Lanczos extremes and stochastic Lanczos quadrature (SLQ).

What: ``spectrum(params, ctx)`` returns, for the *full* Hessian H = ∇²L of the
network's loss (not only Gauss–Newton), in float64 and without forming H:

* ``lambda_max`` / ``lambda_min`` — the extreme Ritz values of one
  full-reorthogonalised Lanczos run of ``order`` steps from one Gaussian start
  vector, with their residual bounds ``*_residual`` = β_k |e_kᵀ y| = ‖H x − θ x‖
  (x = Q y the Ritz vector): an eigenvalue of H lies within that distance of
  each Ritz value (H symmetric). Ritz values interlace, θ_max ≤ λ_max and
  θ_min ≥ λ_min, so an unconverged run under-reports the extremes, never
  over-reports them. ``ritz`` holds all Ritz values, ``ritz_residual`` their bounds.
* ``trace`` — tr H exact: the residual term's diagonal is zero for ReLU
  (:mod:`.hessian`), so tr H = tr(2κJᵀJ) = 2κ‖J‖_F² (``gn_trace``);
  ``trace_slq`` ± ``trace_slq_sem`` — the SLQ/Hutchinson estimate
  (mean of vᵀHv over the Rademacher probes) with its standard error, reported
  as a check on the probes (it must agree with ``trace`` within a few sem).
* spectral density — ``nodes``/``weights``: the SLQ estimate of the spectral
  measure μ = (1/P) Σ_i δ_{λ_i}, i.e. the Gauss quadrature (Ritz values,
  squared first components of the eigenvectors of the tridiagonal matrix) of
  ``slq_order`` Lanczos steps from each of ``n_probes`` Rademacher probes, pooled
  with weight 1/n_probes; ``density`` on ``grid``: that measure convolved with a
  Gaussian of standard deviation ``sigma`` (default 1% of the spectral width).

Everything is matrix-free: H·v is ``jax.jvp`` of ``jax.grad`` of the loss
(forward-over-reverse, ~4 forward passes), and the Lanczos recurrences are
``matfree.decomp.tridiag_sym`` with full reorthogonalisation (Arnoldi with a
second Gram–Schmidt pass), all inside one compiled function.

Inactive units. A ReLU unit that is off on every input has exactly zero
Hessian rows and columns, so H = H_active ⊕ 0. Probes and the start vector are
zero on inactive units' parameters; the Krylov spaces then stay (exactly) in the
active block, and the inactive units' P − P_active zeros are added to the
measure as one node at 0 with weight (P − P_active)/P — exact, and one compiled
function serves every sparsity.

Accuracy (a priori; measured figures in ``benchmarks/hessian_slq.py``). Let
W₁ be the Wasserstein-1 distance between the SLQ measure and μ, w = λ_max −
λ_min, and F_a the distribution function of the active block's spectrum.
Gauss quadrature with k nodes integrates polynomials of degree ≤ 2k − 1
exactly, so by Jackson's theorem (a 1-Lipschitz f on an interval of width w is
within πw/(8k) of a degree-(2k − 1) polynomial) each probe's quadrature is
within W₁ ≤ πw/(4k) of that probe's weighted spectral measure; those measures
average to μ_a, and for Rademacher probes Var(vᵀΠv) ≤ 2‖Π‖_F² (Π a spectral
projector) gives E W₁ ≤ ∫ √(2 min(F_a, 1 − F_a)) dx / √(n_probes·P_active)
≤ w/√(n_probes·P_active). The exact node at 0 scales both by P_active/P:

    E W₁/w ≤ (P_active/P) · (π/(4k) + 1/√(n_probes·P_active)).

Defaults and why (P = 18,000, T = 150, 2 cores). One H·v costs ~1.3 ms, but a
full-reorthogonalised step also reads the whole preallocated n×k basis twice
(matfree's Arnoldi does), so a run of k steps costs ~k·HVP + 4nk² flops:
the extreme run dominates and grows as k². ``order=200``: at P ≈ 2,000 the top
five Ritz values and λ_min are at round-off already after 100 steps; at 18,000
(initialisation and after 5,000 GD steps) λ_max's residual bound is ~1e-30 and
λ_min's ~1e-11 after 200 steps but 4e-3 after 100, so 200 is the smallest
round order that converges both ends there. The density needs breadth more
than depth: ``slq_order=80`` puts the quadrature term π/(4k) at 1%, and
``n_probes=10`` the sampling term 1/√(10·18,000) at 0.2% (P ≈ 2,000: 0.7%).
The whole call measured 9.5 s wall (6.8 s CPU) at 18k on the 2 cores with a
load average of ~8 from other jobs, plus 1.5 s to compile: well under 60 s.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import jax
import jax.numpy as jnp
from matfree import decomp, stochtrace

from .network import NetSpec, activation_fn, flatten, unflatten

ORDER = 200        # Lanczos steps for λ_max / λ_min (one start vector)
SLQ_ORDER = 80     # Lanczos steps per SLQ probe
N_PROBES = 10      # Rademacher probes for the density and the Hutchinson trace
N_GRID = 512       # points of the smoothed density's grid
SIGMA_REL = 0.01   # density smoothing: σ = SIGMA_REL · (λ_max − λ_min)


def _loss_fn(X, Y, spec: NetSpec, kappa):
    act = activation_fn(spec)

    def loss(theta):
        q = unflatten(theta, spec)
        r = act(X @ q["W"].T + q["b"]) @ q["V"].T - Y
        return kappa * jnp.sum(r * r)

    return loss


def _tridiag(hvp, v, order):
    """Full-reorthogonalised Lanczos (matfree): diagonal, off-diagonal and β_k = ‖last residual‖."""
    alg = decomp.tridiag_sym(order, reortho="full", materialize=False, custom_vjp=False)
    _Q, (diag, off), resid, _inv = alg(hvp, v)
    return diag, off, jnp.linalg.norm(resid)


@partial(jax.jit, static_argnames=("spec", "order", "slq_order"))
def _core(theta, mask, X, Y, kappa, v0, probes, spec: NetSpec, order: int, slq_order: int):
    """One compiled call: the extreme run from v0 and the SLQ runs from each probe (sequential)."""
    loss = _loss_fn(X, Y, spec, kappa)
    grad = jax.grad(loss)

    def hvp(v):
        return jax.jvp(grad, (theta,), (v,))[1]

    ext = _tridiag(hvp, v0 * mask, order)
    slq = jax.lax.map(lambda v: _tridiag(hvp, v * mask, slq_order), probes)
    return ext, slq


def _truncate(diag, off, beta_k):
    """Cut the recurrence at the first breakdown (β_j ≈ 0: an invariant subspace was found, exact).

    After a breakdown matfree divides by ~0 and later entries are meaningless;
    the leading block up to it holds exact eigenvalues of H (residual 0).
    """
    diag, off = np.asarray(diag, np.float64), np.asarray(off, np.float64)
    scale = max(np.max(np.abs(diag[np.isfinite(diag)]), initial=0.0),
                np.max(np.abs(off[np.isfinite(off)]), initial=0.0), np.finfo(float).tiny)
    bad = ~np.isfinite(off) | (np.abs(off) <= 1e-13 * scale)
    bad_d = ~np.isfinite(diag)
    if bad.any() or bad_d.any():
        cut = min(int(np.argmax(bad)) + 1 if bad.any() else diag.size, int(np.argmax(bad_d)) if bad_d.any() else diag.size)
        if cut == 0:
            raise FloatingPointError("non-finite Hessian-vector product in the Lanczos run")
        return diag[:cut], off[: cut - 1], 0.0
    return diag, off, float(beta_k)


def _ritz(diag, off, beta_k):
    """Ritz values, squared first components (quadrature weights) and residual bounds β_k|e_kᵀy|."""
    from scipy.linalg import eigh_tridiagonal
    theta, Yv = eigh_tridiagonal(diag, off) if diag.size > 1 else (diag.copy(), np.ones((1, 1)))
    return theta, Yv[0] ** 2, beta_k * np.abs(Yv[-1])


def active_mask(params, X, spec: NetSpec) -> np.ndarray:
    """1.0 on the parameters of units active on some input (ReLU: z > 0 somewhere), 0.0 elsewhere."""
    if spec.activation != "relu":
        return np.ones(spec.n_params)
    z = np.asarray(X, np.float64) @ np.asarray(params["W"], np.float64).T + np.asarray(params["b"], np.float64)
    return np.repeat((z > 0).any(0).astype(np.float64), spec.per_unit)


def smoothed_density(nodes, weights, grid, sigma):
    """Σ_i w_i N(x; θ_i, σ²) on ``grid`` (the measure convolved with a Gaussian)."""
    d = (np.asarray(grid)[:, None] - np.asarray(nodes)[None, :]) / sigma
    return (np.exp(-0.5 * d * d) @ np.asarray(weights)) / (sigma * np.sqrt(2 * np.pi))


def wasserstein1(nodes, weights, eigenvalues) -> float:
    """W₁ between the discrete measure Σ w_i δ_{θ_i} and the uniform measure on ``eigenvalues``.

    W₁ = ∫ |F̂(x) − F(x)| dx for measures on the line (F the distribution functions).
    """
    from scipy.stats import wasserstein_distance
    return float(wasserstein_distance(np.asarray(nodes), np.asarray(eigenvalues), u_weights=np.asarray(weights)))


def w1_bound(result, eigenvalues=None) -> float:
    """A-priori bound on E W₁/(λ_max − λ_min) of ``result``'s SLQ measure (module doc).

    With the exact ``eigenvalues`` (all P of them) the sampling term uses
    ∫ √(2 min(F_a, 1 − F_a)) dx; without, its worst case 1/√(n_probes·P_active).
    """
    P, P_a, n_v, k = result["n_params"], result["solved_size"], result["n_probes"], result["slq_order"]
    if P_a == 0:
        return 0.0
    samp = 1.0
    if eigenvalues is not None:
        e = np.sort(np.asarray(eigenvalues, np.float64))
        ea = np.sort(np.delete(e, np.argsort(np.abs(e))[: P - P_a]))  # drop the inactive units' exact zeros
        F = np.arange(1, P_a) / P_a
        samp = float(np.sum(np.sqrt(2 * np.minimum(F, 1 - F)) * np.diff(ea)) / (e[-1] - e[0]))
    return P_a / P * (np.pi / (4 * k) + samp / np.sqrt(n_v * P_a))


def _inputs(params, ctx, order, slq_order, n_probes, seed):
    """Arguments of :func:`_core` (positional, static) and the active-parameter count."""
    spec, kappa = ctx["spec"], float(ctx["kappa"])
    X, Y = jnp.asarray(ctx["X"], jnp.float64), jnp.asarray(ctx["Y"], jnp.float64)
    theta = flatten(jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params))
    if theta.dtype != jnp.float64:
        raise RuntimeError("the SLQ path needs float64: enable jax_enable_x64 (importing flatland does)")
    mask = active_mask(params, X, spec)
    P_a = int(mask.sum())
    k_v0, k_probe = jax.random.split(jax.random.key(seed))
    v0 = jax.random.normal(k_v0, theta.shape, jnp.float64)
    probes = stochtrace.sampler_signs(theta, num=int(n_probes))(k_probe)
    statics = {"spec": spec, "order": max(1, min(int(order), P_a)), "slq_order": max(1, min(int(slq_order), P_a))}
    return (theta, jnp.asarray(mask), X, Y, kappa, v0, probes), statics, P_a


def spectrum(params, ctx, order=ORDER, slq_order=SLQ_ORDER, n_probes=N_PROBES, seed=0,
             n_grid=N_GRID, sigma=None) -> dict:
    """Full-Hessian λ_max, λ_min, tr H and spectral density, matrix-free (see the module doc).

    ``ctx`` is the loss's ``extras["relu"]``. ``order`` and ``slq_order`` are
    clipped to the number of active parameters; ``sigma`` (absolute) defaults to
    ``SIGMA_REL`` of the spectral width. ``probe_nodes``/``probe_weights`` are
    each probe's quadrature on the active block (for :func:`mass_below`).
    """
    from .hessian import gn_trace

    spec, kappa = ctx["spec"], float(ctx["kappa"])
    P = spec.n_params
    args, statics, P_a = _inputs(params, ctx, order, slq_order, n_probes, seed)
    out = {"n_params": P, "solved_size": P_a, "structural_zeros": P - P_a,
           "order": 0, "slq_order": 0, "n_probes": int(n_probes),
           "trace": float(gn_trace(params, args[2], spec, kappa)) if spec.activation == "relu" else float("nan")}
    if P_a == 0:
        z = np.zeros(1)
        return out | {"lambda_max": 0.0, "lambda_min": 0.0, "lambda_max_residual": 0.0, "lambda_min_residual": 0.0,
                      "ritz": z, "ritz_residual": z, "trace_slq": 0.0, "trace_slq_sem": 0.0,
                      "nodes": z, "weights": np.ones(1), "probe_nodes": [], "probe_weights": [],
                      "grid": z, "density": z, "sigma": 0.0}
    (d, o, b), (ds, os_, bs) = jax.device_get(_core(*args, **statics))
    ritz, _w, res = _ritz(*_truncate(d, o, b))
    pn, pw, quad = [], [], []
    for i in range(int(n_probes)):
        th, w, _r = _ritz(*_truncate(ds[i], os_[i], bs[i]))
        pn.append(th)
        pw.append(w / w.sum())
        quad.append(P_a * float(ds[i][0]))   # vᵀHv, ‖v‖² = P_a (Rademacher on the active block)
    frac = P_a / P
    nodes = np.concatenate(pn + ([np.zeros(1)] if P_a < P else []))
    weights = np.concatenate([w * frac / n_probes for w in pw] + ([np.array([1 - frac])] if P_a < P else []))
    lo, hi = float(min(ritz[0], nodes.min())), float(max(ritz[-1], nodes.max()))
    sig = float(sigma) if sigma is not None else SIGMA_REL * max(hi - lo, np.finfo(float).tiny)
    grid = np.linspace(lo - 4 * sig, hi + 4 * sig, int(n_grid))
    quad = np.asarray(quad)
    return out | {
        "order": statics["order"], "slq_order": statics["slq_order"],
        "lambda_max": float(ritz[-1]), "lambda_min": float(ritz[0]),
        "lambda_max_residual": float(res[-1]), "lambda_min_residual": float(res[0]),
        "ritz": ritz, "ritz_residual": res,
        "trace_slq": float(quad.mean()),
        "trace_slq_sem": float(quad.std(ddof=1) / np.sqrt(quad.size)) if quad.size > 1 else float("nan"),
        "nodes": nodes, "weights": weights, "probe_nodes": pn, "probe_weights": pw,
        "grid": grid, "sigma": sig, "density": smoothed_density(nodes, weights, grid, sig),
    }


def mass_below(result, x) -> tuple:
    """Fraction of H's P eigenvalues below ``x``: SLQ estimate and its quadrature bracket.

    Returns (estimate, lo, hi). Per probe, the Chebyshev–Markov–Stieltjes
    inequalities bound the probe's weighted spectral measure of (−∞, x) by the
    quadrature: with S_j the weight of the nodes < x and θ_j ≤ x < θ_{j+1}, it lies in
    [S_j − w_j, S_j + w_{j+1}]. The bracket is that, averaged over probes (the
    probes' own sampling error, ~√(2F/(n_probes·P_active)), comes on top). It is
    wide wherever the spectrum is dense near x — for the count of negative
    eigenvalues it usually is, since most eigenvalues sit near 0.
    """
    P, P_a = result["n_params"], result["solved_size"]
    est, lo, hi = [], [], []
    for th, w in zip(result["probe_nodes"], result["probe_weights"]):
        j = int(np.searchsorted(th, x, side="left"))      # nodes th[:j] are < x
        S = float(w[:j].sum())
        est.append(S)
        lo.append(S - (w[j - 1] if j > 0 else 0.0))
        hi.append(S + (w[j] if j < w.size else 0.0))
    zero = (P - P_a) / P if x > 0 else 0.0             # the inactive units' exact zeros
    f = P_a / P
    if not est:
        return zero, zero, zero
    return tuple(zero + f * float(np.mean(v)) for v in (est, lo, hi))
