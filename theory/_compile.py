"""Predictions compiled to pure JAX, for evaluation along millions of simulated points.

``compile_prediction(problem, noise, observable)`` returns
``f(theta, eta, sigma) -> dict`` built from SymPy derivatives lambdified to JAX
once (cached per problem, noise, observable and rank); inside it only array
arithmetic and ``jnp.linalg.eigh`` run, so ``jit(vmap(f))`` works over θ, η and
σ without retracing. The normal space is the top-m eigenspace of the curvature
matrix (Gauss–Newton 2κJᵀJ when residuals exist, else ∇²L), m the rank on Γ,
which stays meaningful slightly off Γ.
"""
from __future__ import annotations

import functools

import numpy as np

import flatland  # noqa: F401  (float64)
import jax.numpy as jnp
from flatland.contracts import CovarianceContext
from flatland.errors import UserError, unknown_name

from . import _rule
from . import _symbolic as S
from . import covariance as cov
from ._lambdify import lambdify_flat
from ._parse import parse_expr
from ._problem import Problem

#: noise names the theory understands
NOISES = tuple(cov.BY_NAME)
LABEL_LIKE = ("label", "uniform-label")


def check_noise(problem: Problem, noise: str) -> None:
    """UserError for an unknown noise name, or label noise without residuals."""
    if noise == "minibatch":
        raise UserError("minibatch noise has no separate prediction: minibatch SGD with residual variance s² "
                        "and batch size B acts as label noise with σ² = s²/B (use --noise label --sigma s/sqrt(B))")
    if noise not in cov.BY_NAME:
        raise unknown_name("noise model", noise, NOISES)
    if noise in LABEL_LIKE:
        problem.require_residuals(f"{noise} noise")


def _xp(backend: str):
    return jnp if backend == "jax" else np


@functools.lru_cache(maxsize=256)
def curvature_function(problem: Problem, backend: str = "jax"):
    """A pure function θ -> (H, dH, J or None) with ``dH[k] = ∂_k H`` (JAX or NumPy)."""
    n, xp = problem.dim, _xp(backend)
    if problem.has_residuals:
        J_s, dJ_s = S.jacobian(problem), S.jacobian_derivs(problem)
        r = J_s.shape[0]
        J_f = lambdify_flat(problem.symbols, list(J_s), (r, n), backend)
        dJ_f = lambdify_flat(problem.symbols, [e for M in dJ_s for e in M], (n, r, n), backend)
        kappa = float(problem.kappa)

        def curvature(theta):
            J = J_f(theta)
            H, dH = _rule.gauss_newton_derivs(xp, J, dJ_f(theta), kappa)
            return H, dH, J
    else:
        H_f = lambdify_flat(problem.symbols, list(S.hessian(problem)), (n, n), backend)
        dH_f = lambdify_flat(problem.symbols, [e for M in S.third(problem) for e in M], (n, n, n), backend)

        def curvature(theta):
            return H_f(theta), dH_f(theta), None
    return curvature


@functools.lru_cache(maxsize=256)
def observable_functions(problem: Problem, observable: str, backend: str = "jax"):
    """Functions θ -> ∇c and θ -> ∇²c for an observable c given as text."""
    c = parse_expr(observable, problem.variables)
    g = [S.d(c, s) for s in problem.symbols]
    h = [S.d(gi, s) for gi in g for s in problem.symbols]
    n = problem.dim
    return (lambdify_flat(problem.symbols, g, (n,), backend),
            lambdify_flat(problem.symbols, h, (n, n), backend))


@functools.lru_cache(maxsize=128)
def default_rank(problem: Problem) -> int:
    """The rank m of H on Γ: at the problem's own point projected onto Γ, else at
    Γ-points reached from a few fixed pseudo-random starts."""
    from ._manifold import project, rank_and_basis

    starts = [problem.point] if problem.point is not None else []
    rng = np.random.default_rng(0)
    starts += [rng.standard_normal(problem.dim) for _ in range(5)]
    for start in starts:
        try:
            theta, _ = project(problem, start)
        except UserError:
            continue
        H = curvature_function(problem, "numpy")(theta)[0]
        return rank_and_basis(H)[0]
    raise UserError("cannot find a point on the zero-loss manifold to read its codimension: pass rank=")


def compile_prediction(problem: Problem, noise: str, observable=None, *, rank: int | None = None):
    """A cached pure JAX function ``f(theta, eta, sigma) -> dict`` of per-step predictions.

    Keys: ``drift_leading``, ``drift_finite_eta`` (shape (d,)) and, with an
    observable (text in the safe grammar), ``observable_leading``,
    ``observable_finite_eta``, ``observable_without_ito`` (leading order),
    ``observable_without_ito_finite_eta`` and ``observable_ito``. ``sigma`` is
    the noise's scale: σ (update, label), σ_g (gradient), the width w
    (uniform-label) or the probe std s (sed, with ``eta`` = μ). ``rank``
    defaults to the rank of H on Γ (``default_rank``).
    """
    check_noise(problem, noise)
    if observable is not None and not isinstance(observable, str):
        raise TypeError("observable must be an expression string")
    m = default_rank(problem) if rank is None else int(rank)
    return build(problem, noise, observable, m, "jax")


@functools.lru_cache(maxsize=256)
def build(problem: Problem, noise: str, observable, m: int, backend: str = "jax"):
    """The prediction function of ``compile_prediction`` for backend "jax" or "numpy"."""
    xp = _xp(backend)
    curvature = curvature_function(problem, backend)
    obs = None if observable is None else observable_functions(problem, observable, backend)
    cov_fn, key = cov.BY_NAME[noise], cov.SIGMA_KEY[noise]
    kappa = float(problem.kappa) if problem.kappa is not None else 0.5
    n = problem.dim

    def f(theta, eta, sigma):
        theta = xp.asarray(theta)
        H, dH, J = curvature(theta)
        eye = xp.eye(n)
        C = cov_fn(CovarianceContext(H=H, eye=eye, eta=eta, kappa=kappa, hyper={key: sigma}, J=J))
        if m == 0:
            v_lead = v_fin = xp.zeros(n)
            P_T = eye
        else:
            lam_n, U_n, P_T = _rule.normal_split(xp, H, m)
            if noise == "sed":
                v_lead = v_fin = -(eta * sigma**4 / 2) * (P_T @ xp.einsum("kii->k", dH))
            else:
                S_lead = _rule.stationary_covariance(xp, lam_n, U_n, C, eta, False)
                S_fin = _rule.stationary_covariance(xp, lam_n, U_n, C, eta, True)
                v_lead = _rule.drift_from_s(xp, S_lead, dH, P_T, eta)
                v_fin = _rule.drift_from_s(xp, S_fin, dH, P_T, eta)
        out = {"drift_leading": v_lead, "drift_finite_eta": v_fin}
        if obs is not None:
            grad_c, hess_c = obs[0](theta), obs[1](theta)
            ito = _rule.ito_term(xp, hess_c, P_T, C)
            out.update(observable_without_ito=grad_c @ v_lead, observable_without_ito_finite_eta=grad_c @ v_fin,
                       observable_ito=ito, observable_leading=grad_c @ v_lead + ito,
                       observable_finite_eta=grad_c @ v_fin + ito)
        return out

    f.__doc__ = f"Per-step predictions for {problem!r} under {noise} noise (rank {m})."
    return f
