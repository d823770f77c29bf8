"""Predictions compiled to pure JAX, for evaluation along millions of simulated points.

``compile_prediction(problem, law, observable)`` returns ``f(theta, hyper) -> dict``
built from SymPy derivatives lambdified to JAX once (cached per problem, law,
observable and rank); ``hyper`` is ``{"learner": {...}, "noise": {...}}`` (the
simulator's layout, every key present: see ``StepLaw.resolve``). Inside ``f``
only array arithmetic, the components' declared covariances and
``jnp.linalg.eigh`` run, so ``jit(vmap(f))`` works over θ and the
hyperparameters without retracing. The normal space is the top-m eigenspace of
the curvature matrix (Gauss–Newton 2κJᵀJ when residuals exist, else ∇²L), m the
rank on Γ, which stays meaningful slightly off Γ.
"""
from __future__ import annotations

import functools

import numpy as np

import jax
import jax.numpy as jnp
from flatland.errors import PluginError, UserError

from . import _rule
from . import _symbolic as S
from ._closed import hyper_symbols, hyper_values, potential_gradient_function
from ._declare import CovarianceContext, StepLaw, declares_growth
from ._lambdify import lambdify_flat
from ._parse import parse_expr
from ._problem import Problem



def check_law(problem: Problem, law: StepLaw) -> None:
    """UserError when the law cannot apply to the problem (e.g. label-like noise without residuals)."""
    if not isinstance(law, StepLaw):
        raise TypeError(f"expected a flatland.theory.StepLaw, got {type(law).__name__}")
    if law.needs_residuals:
        problem.require_residuals(f"{law.name} noise")


def _xp(backend: str):
    return jnp if backend == "jax" else np


@functools.lru_cache(maxsize=256)
def curvature_function(problem: Problem, backend: str = "jax"):
    """A pure function θ -> (H, dH, J or None): curvature H (Gauss–Newton with residuals), ``dH[k] = ∂_k∇²L``."""
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
def default_rank(problem: Problem, at: tuple | None = None) -> int:
    """The rank m of H on Γ around ``at`` (else the problem's own point) projected onto Γ
    (``_manifold.local_rank``); without either, around Γ-points reached from a few fixed
    pseudo-random starts. Γ may have pieces of different codimension: the rank is the one where
    the chains are."""
    from ._manifold import local_rank, project

    center = at if at is not None else problem.point
    starts = [center] if center is not None else []
    if center is None:
        rng = np.random.default_rng(0)
        starts += [rng.standard_normal(problem.dim) for _ in range(5)]
    for start in starts:
        try:
            theta, _ = project(problem, start)
        except UserError:
            continue
        return local_rank(problem, theta)
    raise UserError("cannot find a point on the zero-loss manifold to read its codimension: give a point on it")


def compile_prediction(problem: Problem, law: StepLaw, observable=None, *, rank: int | None = None,
                       at: tuple | None = None):
    """A cached pure JAX function ``f(theta, hyper) -> dict`` of per-step predictions.

    Keys: ``drift_leading``, ``drift_finite_eta`` (the projected point's drift along Γ, shape (d,)),
    ``drift_normal`` (its motion along the normal on a curved Γ, n_curv, with the step's
    covariance at finite η), ``drift_normal_leading`` (the same at leading order) and, with an
    observable (text in the safe grammar), ``observable_leading``,
    ``observable_finite_eta``, ``observable_without_ito`` (leading order),
    ``observable_without_ito_finite_eta`` and ``observable_ito`` (finite η). ``rank``
    defaults to the rank of H on Γ around the point ``at`` (``default_rank``).
    """
    check_law(problem, law)
    if observable is not None and not isinstance(observable, str):
        raise TypeError("observable must be an expression string")
    m = default_rank(problem, None if at is None else tuple(float(v) for v in at)) if rank is None else int(rank)
    return build(problem, law, observable, m, "jax")


def gradient_covariances(law: StepLaw, ctx_noise: CovarianceContext, ctx_learner: CovarianceContext) -> list:
    """The declared off-Γ parts of the step's covariance, as functions g -> K(g) (learner's, noise's)."""
    out = []
    if law.learner.gradient_covariance is not None:
        out.append(lambda g: law.learner.gradient_covariance(ctx_learner, g))
    if law.noise is not None and declares_growth(law.noise):
        out.append(lambda g: law.noise.gradient_covariance(ctx_noise, g))
    return out


def total_covariance(law: StepLaw, ctx_noise: CovarianceContext, ctx_learner: CovarianceContext):
    """C = the noise model's declared covariance + the learner's own (zero where none is declared)."""
    C = 0 * ctx_noise.eye
    if law.noise is not None:
        Cn = law.noise.covariance(ctx_noise)
        if Cn is None:
            raise UserError(f"noise model {law.name!r} declares no covariance (its covariance(ctx) returns None): "
                            "the theory has no prediction for it")
        C = C + _square(f"noise model {law.name!r}: covariance(ctx)", Cn, C.shape[0])
    if law.learner.covariance is not None:
        C = C + _square("the learner's LearnerTheory.covariance(ctx)", law.learner.covariance(ctx_learner), C.shape[0])
    return C


def _square(what: str, C, d: int):
    """``C`` if it is d × d (one row and column per parameter), else a PluginError naming its shape."""
    shape = tuple(getattr(C, "shape", np.shape(C)))
    if shape != (d, d):
        raise PluginError(f"{what} has shape {shape}, not ({d}, {d}): one row and one column per parameter")
    return C


def check_symmetric_psd(law: StepLaw, C) -> None:
    """A PluginError unless the declared covariance (numbers) is symmetric and positive semi-definite."""
    C = np.asarray(C, float)
    who = f"noise model {law.name!r}" + (" with the learner's own" if law.learner.covariance is not None else "")
    size = float(np.max(np.abs(C))) if C.size else 0.0
    if not np.allclose(C, C.T, rtol=0, atol=1e-9 * size):
        raise PluginError(f"{who}: the declared covariance is not symmetric here (largest |C − Cᵀ| = "
                          f"{float(np.max(np.abs(C - C.T))):.3g}, of entries up to {size:.3g})")
    low = float(np.linalg.eigvalsh((C + C.T) / 2)[0]) if C.size else 0.0
    if low < -1e-9 * size:
        raise PluginError(f"{who}: the declared covariance is not positive semi-definite here (eigenvalue {low:.3g})")


@functools.lru_cache(maxsize=256)
def build(problem: Problem, law: StepLaw, observable, m: int, backend: str = "jax"):
    """The prediction function of ``compile_prediction`` for backend "jax" or "numpy"."""
    xp = _xp(backend)
    curvature = curvature_function(problem, backend)
    obs = None if observable is None else observable_functions(problem, observable, backend)
    grad_U = potential_gradient_function(problem, law, backend)
    order = hyper_symbols(law)
    kappa = float(problem.kappa) if problem.kappa is not None else 0.5
    n = problem.dim

    def f(theta, hyper):
        theta = xp.asarray(theta)
        H, dH, J = curvature(theta)
        eye = xp.eye(n)
        eta = law.learner.lr(hyper["learner"])
        ctx = dict(H=H, eye=eye, eta=eta, kappa=kappa, J=J, theta=theta, dH=dH, backend=backend)
        ctx_learner = CovarianceContext(hyper=hyper["learner"], **ctx)
        C = total_covariance(law, CovarianceContext(hyper=hyper["noise"], **ctx), ctx_learner)
        C_fin = C  # the step's covariance averaged over the normal fluctuations, at finite η
        if m == 0:
            v_lead = v_fin = n_lead = n_fin = xp.zeros(n)
            P_T = eye
        else:
            lam_n, U_n, P_T = _rule.normal_split(xp, H, m)
            S_lead = _rule.stationary_covariance(xp, lam_n, U_n, C, eta, False)
            grows = gradient_covariances(law, CovarianceContext(hyper=hyper["noise"], **ctx), ctx_learner)
            if not grows:
                S_fin = _rule.stationary_covariance(xp, lam_n, U_n, C, eta, True)
            else:
                S_fin, EK = _rule.with_gradient_noise(xp, lam_n, U_n, C, eta, lambda g: sum(K(g) for K in grows))
                C_fin = C + EK
            mixed_lead, n_lead = _rule.projection_terms(xp, dH, C, lam_n, U_n, P_T)
            mixed_fin, n_fin = ((mixed_lead, n_lead) if C_fin is C
                                else _rule.projection_terms(xp, dH, C_fin, lam_n, U_n, P_T))
            v_lead = _rule.drift_from_s(xp, S_lead, dH, P_T, eta) + mixed_lead
            v_fin = _rule.drift_from_s(xp, S_fin, dH, P_T, eta) + mixed_fin
            if grad_U is not None:
                bias = -eta * (P_T @ grad_U(theta, *hyper_values(order, hyper)))
                v_lead, v_fin = v_lead + bias, v_fin + bias
        out = {"drift_leading": v_lead, "drift_finite_eta": v_fin, "drift_normal": n_fin,
               "drift_normal_leading": n_lead}
        if obs is not None:
            grad_c, hess_c = obs[0](theta), obs[1](theta)
            ito_lead = _rule.ito_term(xp, hess_c, P_T, C)
            ito = ito_lead if C_fin is C else _rule.ito_term(xp, hess_c, P_T, C_fin)
            lead, fin = grad_c @ (v_lead + n_lead), grad_c @ (v_fin + n_fin)
            out.update(observable_without_ito=lead, observable_without_ito_finite_eta=fin,
                       observable_ito=ito, observable_leading=lead + ito_lead, observable_finite_eta=fin + ito)
        return out

    f.__doc__ = f"Per-step predictions for {problem!r} under {law.name} (rank {m})."
    return f
