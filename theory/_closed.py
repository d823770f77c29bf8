"""Closed-form regularizers and drifts (THEORY.md's table), symbolically.

Spectral quantities are never taken from symbolic eigenvalues. With A the
matrix sharing H's nonzero spectrum on Γ — 2κJJᵀ when residuals exist
(Cauchy–Binet), else ∇²L — the elementary symmetric functions e_k of its
eigenvalues are sums of principal k×k minors (the characteristic polynomial's
coefficients), so

* pdet H = e_m(A),           Π_i (1 − ηλ_i/2) = Σ_{k≤m} (−η/2)^k e_k(A),
* tr H   = tr A.

Regularizers R (drift = −coef · P_T ∇R, per step):
update/gradient: R = log pdet H, finite-η R_η = R − Σ log(1 − ηλ/2);
label/uniform-label: R = tr H, R_η = −(2/η) Σ log(1 − ηλ/2); sed: R = (s²/2) tr H.
"""
from __future__ import annotations

import functools
import itertools

import sympy as sp

from flatland.errors import UserError

from . import _symbolic as S
from ._problem import Problem

ETA = sp.Symbol("η", positive=True)
SIGMA = sp.Symbol("σ", positive=True)

#: noise name → (regularizer kind, one-line description)
KINDS = {
    "none": (None, "no regularizer: plain GD does not drift on Γ"),
    "update": ("logdet", "R = log pdet H (sum of log eigenvalues)"),
    "gradient": ("logdet", "R = log pdet H, as update noise with σ = ησ_g"),
    "label": ("trace", "R = tr H"),
    "uniform-label": ("trace", "R = tr H, as label noise with σ² = w²/12"),
    "sed": ("sed", "R = (s²/2) tr H (SED's own perturbations act like label noise)"),
}


def coefficient(problem: Problem, noise: str) -> sp.Expr:
    """coef in drift = −coef · P_T ∇R, in terms of η (=μ for SED) and σ (= w for uniform-label)."""
    kappa = problem.kappa if problem.kappa is not None else sp.Rational(1, 2)
    return {
        "none": sp.Integer(0),
        "update": SIGMA**2 / 4,
        "gradient": ETA**2 * SIGMA**2 / 4,
        "label": kappa * ETA**2 * SIGMA**2 / 2,
        "uniform-label": kappa * ETA**2 * SIGMA**2 / 24,
        "sed": ETA * SIGMA**2,
    }[noise]


def spectral_matrix(problem: Problem) -> sp.Matrix:
    """A: 2κJJᵀ when residuals exist (same nonzero spectrum as H on Γ), else ∇²L."""
    if problem.has_residuals:
        J = S.jacobian(problem)
        return 2 * problem.kappa * (J * J.T)
    return S.hessian(problem)


def det(M: sp.Matrix) -> sp.Expr:
    """Determinant without simplification: Laplace expansion up to 4×4, else Berkowitz."""
    n = M.shape[0]
    if n == 0:
        return sp.Integer(1)
    if n == 1:
        return M[0, 0]
    if n <= 4:
        return sp.Add(*[(-1) ** j * M[0, j] * det(M.minor_submatrix(0, j)) for j in range(n) if M[0, j] != 0])
    from sympy.matrices.utilities import dotprodsimp

    with dotprodsimp(False):
        return M.det(method="berkowitz")


def elementary(A: sp.Matrix, k: int) -> sp.Expr:
    """e_k of A's eigenvalues: the sum of its principal k×k minors (a characteristic
    polynomial coefficient)."""
    if k == 0:
        return sp.Integer(1)
    n = A.shape[0]
    return sp.Add(*[det(A.extract(list(idx), list(idx))) for idx in itertools.combinations(range(n), k)])


@functools.lru_cache(maxsize=256)
def spectral_sums(problem: Problem, m: int) -> tuple:
    """(pdet H, Π_{i≤m}(1 − ηλ_i/2), tr H) as expressions valid on Γ (rank m)."""
    A = spectral_matrix(problem)
    if m > A.shape[0]:
        raise ValueError(f"rank {m} exceeds the size of the spectral matrix {A.shape[0]}")
    e = [elementary(A, k) for k in range(m + 1)]
    prod = sp.Add(*[(-ETA / 2) ** k * e[k] for k in range(m + 1)])
    return e[m], prod, A.trace()


@functools.lru_cache(maxsize=256)
def regularizer(problem: Problem, noise: str, m: int, finite_eta: bool = False) -> sp.Expr:
    """R (or R_η) on Γ for ``noise`` at rank m."""
    kind = KINDS[noise][0]
    if kind is None:
        return sp.Integer(0)
    pdet, prod, tr = spectral_sums(problem, m)
    if kind == "logdet":
        return sp.log(pdet) - sp.log(prod) if finite_eta else sp.log(pdet)
    if kind == "trace":
        return -(2 / ETA) * sp.log(prod) if finite_eta else tr
    return SIGMA**2 / 2 * tr


@functools.lru_cache(maxsize=256)
def _spectral_gradients(problem: Problem, m: int) -> tuple:
    """(∇pdet, ∇Π(1 − ηλ/2), ∇tr H), each a list over the variables, derived once."""
    A = spectral_matrix(problem)
    e = [elementary(A, k) for k in range(m + 1)]
    grad_e = [[S.d(ek, s) for s in problem.symbols] for ek in e]
    grad_prod = [sp.Add(*[(-ETA / 2) ** k * grad_e[k][i] for k in range(m + 1)]) for i in range(problem.dim)]
    grad_tr = [S.d(A.trace(), s) for s in problem.symbols]
    return grad_e[m], grad_prod, grad_tr


@functools.lru_cache(maxsize=256)
def drift_gradient(problem: Problem, noise: str, m: int, finite_eta: bool = False) -> tuple:
    """−coef ∇R (not yet projected), one expression per variable (∇R by the chain rule)."""
    kind, coef = KINDS[noise][0], coefficient(problem, noise)
    if kind is None:
        return tuple(sp.Integer(0) for _ in problem.symbols)
    pdet, prod, _ = spectral_sums(problem, m)
    g_pdet, g_prod, g_tr = _spectral_gradients(problem, m)
    if kind == "logdet":
        grad = [gp / pdet - (gq / prod if finite_eta else 0) for gp, gq in zip(g_pdet, g_prod)]
    elif kind == "trace":
        grad = [-(2 / ETA) * gq / prod for gq in g_prod] if finite_eta else g_tr
    else:
        grad = [SIGMA**2 / 2 * g for g in g_tr]
    return tuple(-coef * g for g in grad)


@functools.lru_cache(maxsize=256)
def drift_gradient_function(problem: Problem, noise: str, m: int):
    """NumPy function (θ, η, σ) -> (−coef ∇R, −coef ∇R_η), lambdified once."""
    from ._lambdify import lambdify_flat

    exprs = list(drift_gradient(problem, noise, m, False)) + list(drift_gradient(problem, noise, m, True))
    return lambdify_flat(problem.symbols, exprs, (2, problem.dim), "numpy", extra=(ETA, SIGMA))


def tangent_projector(problem: Problem) -> sp.Matrix:
    """P_T = I − Jᵀ(JJᵀ)⁻¹J symbolically (residual problems with independent residuals)."""
    J = S.jacobian(problem)
    G = J * J.T
    g = det(G)
    if g == 0:
        raise UserError("the residuals are dependent (JJᵀ is singular): no symbolic tangent projector")
    return sp.eye(problem.dim) - J.T * G.adjugate(method="bareiss") * J / g


@functools.lru_cache(maxsize=256)
def symbolic_drift(problem: Problem, noise: str, finite_eta: bool = False) -> sp.Matrix:
    """The closed-form drift −coef · P_T ∇R as a column of expressions in θ, η, σ.

    Valid on Γ (substitute a parametrisation of Γ, e.g. y = 0, then simplify).
    Needs residuals whose number is the codimension m (JJᵀ invertible).
    """
    problem.require_residuals("a symbolic drift")
    m = len(problem.residual_exprs)
    g = sp.Matrix(drift_gradient(problem, noise, m, finite_eta))
    return tangent_projector(problem) * g
