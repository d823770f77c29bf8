"""Symbolic derivatives of a Problem, with one convention for kinks.

Convention (shared with the JAX and autograd backends in ``_lambdify``): the
derivative of Max at a tie is 0, so relu′(0) = 0 — SymPy's Heaviside is
rewritten as Heaviside(z, 0) — and every DiracDelta (the second derivative of
Max/Abs) is replaced by 0, which is correct almost everywhere. Symbolic work is
meant one activation pattern at a time: ``specialize`` fixes which Max argument
wins (from a point) and removes Max/Heaviside altogether.

All derivations are cached per Problem; ``derivation_seconds`` times them.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np
import sympy as sp

from ._problem import Problem


def kink_fix(expr: sp.Expr) -> sp.Expr:
    """Apply the kink convention: Heaviside(z) -> Heaviside(z, 0), DiracDelta -> 0."""
    if not expr.has(sp.Heaviside, sp.DiracDelta):
        return expr
    expr = expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.Integer(0))
    return expr.replace(lambda e: isinstance(e, sp.Heaviside) and e.args[1:] != (sp.Integer(0),),
                        lambda e: sp.Heaviside(e.args[0], 0))


def d(expr: sp.Expr, s: sp.Symbol) -> sp.Expr:
    """∂expr/∂s under the kink convention."""
    return kink_fix(sp.diff(expr, s))


@functools.lru_cache(maxsize=256)
def gradient(problem: Problem) -> tuple:
    """∇L as a tuple of expressions."""
    return tuple(d(problem.loss_expr, s) for s in problem.symbols)


@functools.lru_cache(maxsize=256)
def hessian(problem: Problem) -> sp.Matrix:
    """The full Hessian ∇²L (symmetric; each entry derived once)."""
    g, syms, n = gradient(problem), problem.symbols, problem.dim
    H = sp.zeros(n, n)
    for i, j in itertools.combinations_with_replacement(range(n), 2):
        H[i, j] = H[j, i] = d(g[i], syms[j])
    return H


@functools.lru_cache(maxsize=256)
def third(problem: Problem) -> tuple:
    """∂_k H as a tuple of d matrices (third derivatives of L, each derived once)."""
    H, syms, n = hessian(problem), problem.symbols, problem.dim
    T = {}
    for i, j, k in itertools.combinations_with_replacement(range(n), 3):
        T[(i, j, k)] = d(H[i, j], syms[k])
    out = []
    for k in range(n):
        M = sp.zeros(n, n)
        for i in range(n):
            for j in range(n):
                M[i, j] = T[tuple(sorted((i, j, k)))]
        out.append(M)
    return tuple(out)


@functools.lru_cache(maxsize=256)
def jacobian(problem: Problem) -> sp.Matrix:
    """J = ∂r/∂θ (n_residuals × d); requires residuals."""
    problem.require_residuals("the residual Jacobian")
    return sp.Matrix([[d(r, s) for s in problem.symbols] for r in problem.residual_exprs])


@functools.lru_cache(maxsize=256)
def jacobian_derivs(problem: Problem) -> tuple:
    """∂_k J as a tuple of d matrices: (∂_k J)_ij = ∂²r_i/∂θ_j∂θ_k, each derived once."""
    J, syms, n = jacobian(problem), problem.symbols, problem.dim
    second = {}
    for i in range(J.shape[0]):
        for j, k in itertools.combinations_with_replacement(range(n), 2):
            second[(i, j, k)] = d(J[i, j], syms[k])
    return tuple(sp.Matrix(J.shape[0], n, lambda i, j: second[(i, min(j, k), max(j, k))]) for k in range(n))


@functools.lru_cache(maxsize=256)
def gauss_newton(problem: Problem) -> sp.Matrix:
    """2κ JᵀJ: the Hessian on Γ, written without the residual-curvature term."""
    J = jacobian(problem)
    return 2 * problem.kappa * (J.T * J)


def curvature_matrix(problem: Problem) -> sp.Matrix:
    """The matrix whose spectrum defines the normal space: Gauss–Newton if residuals, else ∇²L."""
    return gauss_newton(problem) if problem.has_residuals else hessian(problem)


# --- activation patterns -------------------------------------------------------

def kinks(expr: sp.Expr) -> list[sp.Max]:
    """The Max (relu) subexpressions of ``expr``."""
    return sorted(expr.atoms(sp.Max), key=sp.default_sort_key)


def kink_gaps(problem: Problem, values) -> list[tuple[str, float]]:
    """For each Max at the point: (the Max, gap between its two largest arguments)."""
    subs = dict(zip(problem.symbols, values))
    out = []
    for m in kinks(problem.loss_expr):
        vals = sorted((float(a.subs(subs)) for a in m.args), reverse=True)
        out.append((str(m), vals[0] - vals[1]))
    return out


def pattern_at(expr: sp.Expr, symbols, values) -> dict:
    """Which argument wins each Max at the point: {Max: winning argument}."""
    subs = dict(zip(symbols, values))
    return {m: max(m.args, key=lambda a: float(a.subs(subs))) for m in kinks(expr)}


def specialize(expr: sp.Expr, symbols, values) -> sp.Expr:
    """``expr`` in the activation pattern at the point: Max -> winning argument,
    Heaviside(z, 0) -> its value at the point (0 at a tie, by the convention)."""
    subs = dict(zip(symbols, values))
    pattern = pattern_at(expr, symbols, values)
    expr = expr.xreplace(pattern) if pattern else expr
    steps = {h: sp.Integer(1 if float(h.args[0].subs(subs)) > 0 else 0) for h in expr.atoms(sp.Heaviside)}
    return expr.xreplace(steps) if steps else expr
