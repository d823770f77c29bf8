"""Closed-form regularizers and drifts, recognised from what the components declare.

Drift is linear in the noise covariance C. When the declared C(θ) (noise model
plus the learner's own randomness) has the form a·I + b·H on Γ — isotropic
update or gradient noise (a), label-like noise (b), or a mix — the general rule
has a closed form (Blanc et al. 2020; Damian et al. 2021; Li et al. 2022):

  drift = −P_T ∇Φ,   Φ = (a/4) R_update + (b/4) R_label + η U,

with R_update = log pdet H (finite η: − Σ log(1 − ηλ/2) added), R_label = tr H
(finite η: −(2/η) Σ log(1 − ηλ/2)), η the learner's effective step and U the
potential its mean step descends besides L (e.g. (s²/2) tr H for stochastic
error descent). Where C has another form, or a component's covariance cannot be
evaluated symbolically, there is no closed form and only the general rule
predicts (``ClosedForm.complete`` is False).

Spectral quantities never come from symbolic eigenvalues: with A sharing H's
nonzero spectrum on Γ (2κJJᵀ when residuals exist, Cauchy–Binet, else ∇²L),
pdet H = e_m(A) and Π(1 − ηλ/2) = Σ_k (−η/2)^k e_k(A), e_k the sums of
principal k×k minors.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Optional

import numpy as np
import sympy as sp

from flatland.errors import UserError

from . import _symbolic as S
from ._declare import CovarianceContext, StepLaw, declares_growth
from ._problem import Problem

ETA = sp.Symbol("η", positive=True)
SIGMA = sp.Symbol("σ", positive=True)
_NAMED = {"sigma": SIGMA, "width": sp.Symbol("w", positive=True)}


def hyper_symbols(law: StepLaw) -> tuple:
    """((part, key, symbol), ...) for every hyperparameter of the law, in a fixed order.

    Noise σ and w print as σ and w; the learner's ``lr`` as η; any other key as
    itself (suffixed ``_L`` for a learner key that clashes with a noise key).
    """
    d = law.defaults()
    out, taken = [], set()
    for key in sorted(d["noise"]):
        sym = _NAMED.get(key, sp.Symbol(key, real=True))
        out.append(("noise", key, sym))
        taken.add(sym.name)
    for key in sorted(d["learner"]):
        if key == "lr":
            sym = ETA
        else:
            sym = _NAMED.get(key, sp.Symbol(key, real=True))
            if sym.name in taken:
                sym = sp.Symbol(f"{key}_L", real=True)
        out.append(("learner", key, sym))
    return tuple(out)


def hyper_values(order, hyper) -> list:
    """The values of ``hyper`` ({"learner", "noise"}) in the order of ``hyper_symbols``."""
    return [hyper[part][key] for part, key, _ in order]


def symbolic_context(problem: Problem, law: StepLaw, part: str) -> CovarianceContext:
    """The context with SymPy entries: H on Γ, its derivatives, θ and the hyperparameters as symbols.

    ``dH[k]`` is the full third derivative ∂_k∇²L on Γ, the same as the NumPy/JAX contexts give
    (``_rule.gauss_newton_derivs``): with residuals, ∂_k(2κJᵀJ) plus the residual-curvature term
    2κ Σ_r J_rk ∂_i∂_j r_r, which ∂_k(2κJᵀJ) lacks.
    """
    H = S.curvature_matrix(problem)
    syms = {key: sym for p, key, sym in hyper_symbols(law) if p == part}
    lsyms = {key: sym for p, key, sym in hyper_symbols(law) if p == "learner"}
    kappa = problem.kappa if problem.kappa is not None else sp.Rational(1, 2)
    return CovarianceContext(
        H=H, eye=sp.eye(problem.dim), eta=law.learner.lr(lsyms), kappa=kappa, hyper=syms,
        J=S.jacobian(problem) if problem.has_residuals else None, theta=sp.Matrix(problem.symbols),
        dH=_third_on_gamma(problem, H, kappa), backend="sympy")


def _third_on_gamma(problem: Problem, H, kappa) -> list:
    """∂_k∇²L on Γ as d SymPy matrices (module doc of ``symbolic_context``)."""
    dH = [H.diff(s) for s in problem.symbols]
    if not problem.has_residuals:
        return dH
    J, dJ = S.jacobian(problem), S.jacobian_derivs(problem)
    n = problem.dim
    # (∂_i J)_rj = ∂_i∂_j r_r, so the residual-curvature term's (i, j) entry for coordinate k is Σ_r J_rk (∂_i J)_rj
    return [dH[k] + 2 * kappa * sp.Matrix(n, n, lambda i, j: sum(J[r, k] * dJ[i][r, j] for r in range(J.shape[0])))
            for k in range(n)]


@dataclasses.dataclass(frozen=True)
class ClosedForm:
    """C = a·I + b·H (when ``complete``), the learner's effective step ``eta`` and potential U.

    ``finite_eta`` is False when only the leading order has a closed form: the
    learner's step noise grows with the gradient (``gradient_covariance``), which
    the finite-η closed forms do not contain (the general rule does).
    ``varying`` names the variables a or b depend on: then the drift keeps its
    closed form −P_T((a/4)∇R_update + (b/4)∇R_label + η∇U), the rule being local,
    but its noise part is not the gradient of (a/4)R_update + … (a varies along
    Γ): :func:`regularizer` refuses, and ``predict`` writes ηU alone with the
    reason (:func:`no_potential_text`).
    """

    a: sp.Expr
    b: sp.Expr
    eta: sp.Expr
    U: sp.Expr
    complete: bool
    note: str = ""
    finite_eta: bool = True
    varying: tuple = ()


def _as_matrix(C, d):
    if C is None:
        return None
    M = sp.Matrix(C)
    if M.shape != (d, d):
        raise ValueError(f"covariance has shape {M.shape}, expected {(d, d)}")
    return M


def _split(C: sp.Matrix, H: sp.Matrix):
    """(a, b) with C = aI + bH read off entries; verified by the caller."""
    d = C.shape[0]
    for i, j in itertools.product(range(d), range(d)):
        if i != j and sp.cancel(H[i, j]) != 0:
            b = sp.cancel(C[i, j] / H[i, j])
            return sp.cancel(C[0, 0] - b * H[0, 0]), b
    for i, j in itertools.combinations(range(d), 2):
        gap = sp.cancel(H[i, i] - H[j, j])
        if gap != 0:
            b = sp.cancel((C[i, i] - C[j, j]) / gap)
            return sp.cancel(C[i, i] - b * H[i, i]), b
    return C[0, 0], sp.Integer(0)


def _vanishes(problem, expr_matrix, order, tries: int = 3) -> bool:
    """Whether every entry is 0, at a few pseudo-random points and hyperparameter values."""
    from ._lambdify import lambdify_flat

    exprs = [e for e in expr_matrix]
    if all(sp.sympify(e) == 0 for e in exprs):
        return True
    f = lambdify_flat(problem.symbols, exprs, (len(exprs),), "numpy", extra=tuple(s for _, _, s in order))
    rng = np.random.default_rng(7)
    for _ in range(tries):
        theta = rng.uniform(0.3, 1.7, problem.dim)
        vals = rng.uniform(0.05, 0.5, len(order))
        with np.errstate(all="ignore"):
            out = f(theta, *vals)
        if not np.all(np.isfinite(out)) or np.max(np.abs(out)) > 1e-9:
            return False
    return True


@functools.lru_cache(maxsize=256)
def closed_form(problem: Problem, law: StepLaw) -> ClosedForm:
    """Recognise C = a·I + b·H from the law's declarations (see the module docstring)."""
    d = problem.dim
    order = hyper_symbols(law)
    ctx_n = symbolic_context(problem, law, "noise")
    ctx_l = symbolic_context(problem, law, "learner")
    eta = sp.sympify(ctx_n.eta)
    U = sp.Integer(0)
    try:
        if law.learner.potential is not None:
            U = sp.sympify(law.learner.potential(ctx_l))
        C = sp.zeros(d, d)
        for fn, ctx in ((getattr(law.noise, "covariance", None), ctx_n), (law.learner.covariance, ctx_l)):
            if fn is not None:
                M = _as_matrix(fn(ctx), d)
                if M is not None:
                    C = C + M
    except Exception as exc:  # a covariance written for arrays only: the general rule still predicts
        return ClosedForm(sp.Integer(0), sp.Integer(0), eta, U, False,
                          f"no closed form: the declared covariance cannot be evaluated symbolically ({exc})")
    H = ctx_n.H
    a, b = _split(C, H)
    if not _vanishes(problem, C - a * sp.eye(d) - b * H, order):
        return ClosedForm(sp.Integer(0), sp.Integer(0), eta, U, False,
                          "no closed form: the declared covariance is not of the form a·I + b·H")
    varying = tuple(str(v) for v in problem.symbols if sp.sympify(a).has(v) or sp.sympify(b).has(v))
    if law.learner.gradient_covariance is not None or (law.noise is not None and declares_growth(law.noise)):
        return ClosedForm(a, b, eta, U, True, "no finite-η closed form: the step's noise grows with the gradient off "
                          "Γ (gradient_covariance); the general rule alone predicts at finite η", False, varying)
    return ClosedForm(a, b, eta, U, True, varying=varying)


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
    """e_k of A's eigenvalues: the sum of its principal k×k minors."""
    if k == 0:
        return sp.Integer(1)
    n = A.shape[0]
    return sp.Add(*[det(A.extract(list(idx), list(idx))) for idx in itertools.combinations(range(n), k)])


@functools.lru_cache(maxsize=256)
def spectral_sums(problem: Problem, m: int) -> tuple:
    """(pdet H, Π_{i≤m}(1 − ηλ_i/2), tr H) as expressions valid on Γ (rank m), η = ``ETA``."""
    A = spectral_matrix(problem)
    if m > A.shape[0]:
        raise ValueError(f"rank {m} exceeds the size of the spectral matrix {A.shape[0]}")
    e = [elementary(A, k) for k in range(m + 1)]
    prod = sp.Add(*[(-ETA / 2) ** k * e[k] for k in range(m + 1)])
    return e[m], prod, A.trace()


@functools.lru_cache(maxsize=256)
def _spectral_gradients(problem: Problem, m: int) -> tuple:
    """(∇pdet, ∇Π(1 − ηλ/2), ∇tr H), each a list over the variables, derived once."""
    A = spectral_matrix(problem)
    e = [elementary(A, k) for k in range(m + 1)]
    grad_e = [[S.d(ek, s) for s in problem.symbols] for ek in e]
    grad_prod = [sp.Add(*[(-ETA / 2) ** k * grad_e[k][i] for k in range(m + 1)]) for i in range(problem.dim)]
    grad_tr = [S.d(A.trace(), s) for s in problem.symbols]
    return grad_e[m], grad_prod, grad_tr


def no_potential_text(cf: ClosedForm) -> str:
    """Why the noise's part of a closed-form drift is no gradient: C = a·I + b·H with a or b varying with θ."""
    return (f"the noise's part has no potential: C = a·I + b·H with a = {cf.a}, b = {cf.b}, which vary with "
            f"{', '.join(cf.varying)}, so its drift −P_T((a/4)∇log pdet H + (b/4)∇tr H) is not the gradient of "
            "one function")


def potential_part(cf: ClosedForm) -> sp.Expr:
    """η·U, the learner's potential term of Φ: a gradient whatever the noise's part is."""
    return sp.sympify(cf.eta) * sp.sympify(cf.U)


def _require(cf: ClosedForm):
    if not cf.complete:
        raise UserError(cf.note)


@functools.lru_cache(maxsize=256)
def regularizer(problem: Problem, law: StepLaw, m: int, finite_eta: bool = False) -> sp.Expr:
    """Φ on Γ at rank m, with drift = −P_T ∇Φ per step (UserError without a closed form, or when the
    covariance's coefficients vary with θ: then the drift is no gradient, ``ClosedForm.varying``)."""
    cf = closed_form(problem, law)
    _require(cf)
    if cf.varying:
        raise UserError(no_potential_text(cf))
    pdet, prod, tr = spectral_sums(problem, m) if (cf.a != 0 or cf.b != 0) else (1, 1, 0)
    prod = sp.sympify(prod).subs(ETA, cf.eta)
    out = cf.eta * cf.U
    if cf.a != 0:
        out += cf.a / 4 * (sp.log(pdet) - (sp.log(prod) if finite_eta else 0))
    if cf.b != 0:
        out += cf.b / 4 * (-(2 / cf.eta) * sp.log(prod) if finite_eta else tr)
    return out


@functools.lru_cache(maxsize=256)
def drift_gradient(problem: Problem, law: StepLaw, m: int, finite_eta: bool = False) -> tuple:
    """−∇Φ (not yet projected), one expression per variable, by the chain rule."""
    cf = closed_form(problem, law)
    _require(cf)
    grad = [-cf.eta * S.d(cf.U, s) for s in problem.symbols]
    if cf.a == 0 and cf.b == 0:
        return tuple(grad)
    pdet, prod, _ = spectral_sums(problem, m)
    g_pdet, g_prod, g_tr = _spectral_gradients(problem, m)
    prod = prod.subs(ETA, cf.eta)
    g_prod = [g.subs(ETA, cf.eta) for g in g_prod]
    for i in range(problem.dim):
        if cf.a != 0:
            grad[i] -= cf.a / 4 * (g_pdet[i] / pdet - (g_prod[i] / prod if finite_eta else 0))
        if cf.b != 0:
            grad[i] -= cf.b / 4 * (-(2 / cf.eta) * g_prod[i] / prod if finite_eta else g_tr[i])
    return tuple(grad)


@functools.lru_cache(maxsize=256)
def drift_gradient_function(problem: Problem, law: StepLaw, m: int):
    """NumPy function (θ, *hyper values in ``hyper_symbols`` order) -> (−∇Φ, −∇Φ_η)."""
    from ._lambdify import lambdify_flat

    exprs = list(drift_gradient(problem, law, m, False)) + list(drift_gradient(problem, law, m, True))
    extra = tuple(s for _, _, s in hyper_symbols(law))
    return lambdify_flat(problem.symbols, exprs, (2, problem.dim), "numpy", extra=extra)


@functools.lru_cache(maxsize=256)
def potential_gradient_function(problem: Problem, law: StepLaw, backend: str) -> Optional[object]:
    """(θ, *hyper values) -> ∇U of the learner's potential, or None when it declares none."""
    from ._lambdify import lambdify_flat

    if law.learner.potential is None:
        return None
    U = sp.sympify(law.learner.potential(symbolic_context(problem, law, "learner")))
    extra = tuple(s for _, _, s in hyper_symbols(law))
    return lambdify_flat(problem.symbols, [S.d(U, s) for s in problem.symbols], (problem.dim,), backend, extra=extra)


def tangent_projector(problem: Problem) -> sp.Matrix:
    """P_T = I − Jᵀ(JJᵀ)⁻¹J symbolically (residual problems with independent residuals)."""
    J = S.jacobian(problem)
    G = J * J.T
    g = det(G)
    if g == 0:
        raise UserError("the residuals are dependent (JJᵀ is singular): no symbolic tangent projector")
    return sp.eye(problem.dim) - J.T * G.adjugate(method="bareiss") * J / g


@functools.lru_cache(maxsize=256)
def symbolic_drift(problem: Problem, law: StepLaw, finite_eta: bool = False) -> sp.Matrix:
    """The closed-form drift −P_T ∇Φ as a column of expressions in θ and the hyperparameters.

    Valid on Γ (substitute a parametrisation of Γ, e.g. y = 0, then simplify).
    Needs residuals whose number is the codimension m (JJᵀ invertible).
    """
    problem.require_residuals("a symbolic drift")
    m = len(problem.residual_exprs)
    g = sp.Matrix(drift_gradient(problem, law, m, finite_eta))
    return tangent_projector(problem) * g
