"""Three independent Hessians of a Problem at a point, as float64 NumPy arrays.

* ``hessian_sympy``: the exact symbolic Hessian, evaluated at the point in
  30-digit mpmath arithmetic;
* ``hessian_jax``: ``jax.hessian`` of the loss lambdified to JAX;
* ``hessian_autograd``: ``autograd.hessian`` of the loss lambdified with a
  module mapping onto ``autograd.numpy``.

They share only the parsed loss expression and the kink convention, so their
agreement (tests: relative 1e-9) checks the symbolic derivation end to end.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp


import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)  # float64: drift constants and eigenvalues near zero need it

from . import _symbolic as S
from ._lambdify import autograd_function, jax_function, prepare
from ._problem import Problem, parse_point


def _theta(problem: Problem, point) -> np.ndarray:
    if isinstance(point, (dict, str)):
        point = parse_point(point, problem.variables)
    theta = np.asarray(point, dtype=float)
    if theta.shape != (problem.dim,):
        raise ValueError(f"point must have {problem.dim} coordinates, got shape {theta.shape}")
    return theta


@functools.lru_cache(maxsize=256)
def _sympy_hessian(problem: Problem):
    """The symbolic Hessian lambdified to mpmath (upper triangle, kink convention kept)."""
    import mpmath

    H, n = S.hessian(problem), problem.dim
    entries = [prepare(H[i, j]) for i in range(n) for j in range(i, n)]
    namespace = {
        "flatmax": lambda *a: max(a), "flatstep": lambda z: mpmath.mpf(1 if z > 0 else 0),
        "flatabs": abs, "flatsign": lambda z: mpmath.mpf((z > 0) - (z < 0)),
    }
    return sp.lambdify(list(problem.symbols), entries, modules=[namespace, "mpmath"], cse=True)


def hessian_sympy(problem: Problem, point) -> np.ndarray:
    """The exact symbolic Hessian ∇²L evaluated at ``point`` in 30-digit mpmath arithmetic."""
    import mpmath

    theta, n = _theta(problem, point), problem.dim
    with mpmath.workdps(30):
        values = iter(_sympy_hessian(problem)(*[mpmath.mpf(repr(float(v))) for v in theta]))
        out = np.empty((n, n))
        for i in range(n):
            for j in range(i, n):
                out[i, j] = out[j, i] = float(next(values))
    return out


@functools.lru_cache(maxsize=256)
def _jax_hessian(problem: Problem):
    loss = jax_function(problem, "loss")
    return jax.jit(jax.hessian(loss))


def hessian_jax(problem: Problem, point) -> np.ndarray:
    """``jax.hessian`` of the JAX-lambdified loss at ``point``."""
    theta = jnp.asarray(_theta(problem, point))
    return np.asarray(_jax_hessian(problem)(theta), dtype=float)


def hessian_autograd(problem: Problem, point) -> np.ndarray:
    """``autograd.hessian`` of the autograd-lambdified loss at ``point``."""
    import autograd

    loss = autograd_function(problem, "loss")
    return np.asarray(autograd.hessian(loss)(_theta(problem, point)), dtype=float)
