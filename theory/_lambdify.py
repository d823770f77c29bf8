"""SymPy → numeric functions for three backends: JAX, NumPy and autograd.

Max, Heaviside, Abs and sign are renamed to flatland's own functions before
``lambdify`` so that each backend implements the same kink convention as the
symbolic side (``_symbolic``): the derivative of Max at a tie is 0 (so
relu′(0) = 0, where ``jnp.maximum`` would split it ½/½), Heaviside(0) = 0,
|z|′(0) = 0. ``lambdify`` runs once per (expressions, backend) — results are
cached — and never inside ``jit``.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter


import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)  # float64: drift constants and eigenvalues near zero need it

from ._problem import Problem

_FMAX = sp.Function("flatmax")
_FSTEP = sp.Function("flatstep")
_FABS = sp.Function("flatabs")
_FSIGN = sp.Function("flatsign")


def prepare(expr: sp.Expr) -> sp.Expr:
    """Rename kink functions to flatland's backend implementations."""
    if not expr.has(sp.Max, sp.Heaviside, sp.Abs, sp.sign):
        return expr
    return expr.replace(
        lambda e: isinstance(e, (sp.Max, sp.Heaviside, sp.Abs, sp.sign)),
        lambda e: {sp.Max: lambda: _FMAX(*e.args), sp.Heaviside: lambda: _FSTEP(e.args[0]),
                   sp.Abs: lambda: _FABS(e.args[0]), sp.sign: lambda: _FSIGN(e.args[0])}[e.func](),
    )


def _namespace(max2, step, sign):
    def flatmax(*args):
        return functools.reduce(max2, args)

    return {"flatmax": flatmax, "flatstep": step, "flatabs": lambda z: max2(z, -z), "flatsign": sign}


def _jax_max2(a, b):
    a, b = jnp.asarray(a), jnp.asarray(b)
    return jnp.where(a > b, a, jnp.where(b > a, b, jax.lax.stop_gradient(a)))


def _numpy_max2(a, b):
    return np.maximum(a, b)


def _autograd_namespace():
    import autograd.numpy as anp
    from autograd.tracer import getval

    def max2(a, b):
        return anp.where(a > b, a, anp.where(b > a, b, getval(a)))

    ns = _namespace(max2, lambda z: anp.where(z > 0, 1.0, 0.0), anp.sign)
    return {**{k: v for k, v in vars(anp).items() if not k.startswith("_")}, **ns}


def _modules(backend: str):
    if backend == "jax":
        return [_namespace(_jax_max2, lambda z: jnp.where(jnp.asarray(z) > 0, 1.0, 0.0), jnp.sign), "jax"], None
    if backend == "numpy":
        return [_namespace(_numpy_max2, lambda z: np.where(np.asarray(z) > 0, 1.0, 0.0), np.sign), "numpy"], None
    if backend == "autograd":
        printer = NumPyPrinter({"fully_qualified_modules": False, "inline": True,
                                "allow_unknown_functions": True, "user_functions": {}})
        return [_autograd_namespace()], printer
    raise ValueError(f"unknown backend {backend!r}")


def lambdify_flat(symbols, exprs, shape, backend: str, extra=()):
    """``f(theta, *extra_values) -> array of shape`` from a flat list of expressions.

    ``symbols`` name the coordinates of ``theta``; ``extra`` are further scalar
    symbols passed as arguments after ``theta``.
    """
    modules, printer = _modules(backend)
    exprs = [prepare(sp.sympify(e)) for e in exprs]
    kwargs = {"printer": printer} if printer is not None else {}
    fn = sp.lambdify([list(symbols), *extra], exprs, modules=modules, cse=True, **kwargs)
    shape = tuple(shape)

    if backend == "jax":
        def f(theta, *args):
            out = fn(theta, *args)
            return jnp.stack([jnp.asarray(v, dtype=jnp.result_type(float)) for v in out]).reshape(shape)
    elif backend == "numpy":
        def f(theta, *args):
            try:  # inf/nan are the caller's to judge (one line), not NumPy warnings on stderr
                with np.errstate(all="ignore"):
                    out = fn(np.asarray(theta, float), *args)
                    return np.array([np.asarray(v, float) for v in out], dtype=float).reshape(shape)
            except OverflowError:  # an exact coefficient of a derivative beyond double precision (e.g. 1e300²)
                raise _overflow() from None
    else:
        import autograd.numpy as anp

        def f(theta, *args):
            out = fn([theta[i] for i in range(len(symbols))], *args)
            return anp.reshape(anp.array(out), shape) if shape else out[0]
    return f


def _overflow():
    from flatland.errors import UserError

    return UserError("a number in the loss or its derivatives is beyond double precision (|x| > 1.8e308); "
                     "rescale the expression")


def _flat(what, problem: Problem):
    from . import _symbolic as S

    n = problem.dim
    if what == "loss":
        return [problem.loss_expr], ()
    if what == "gradient":
        return list(S.gradient(problem)), (n,)
    if what == "hessian":
        return list(S.hessian(problem)), (n, n)
    if what == "curvature":
        return list(S.curvature_matrix(problem)), (n, n)
    if what == "residuals":
        problem.require_residuals("this")
        return list(problem.residual_exprs), (len(problem.residual_exprs),)
    if what == "jacobian":
        J = S.jacobian(problem)
        return list(J), J.shape
    raise ValueError(f"unknown quantity {what!r}")


@functools.lru_cache(maxsize=512)
def numpy_function(problem: Problem, what: str):
    """A cached NumPy function θ -> loss/gradient/hessian/curvature/residuals/jacobian."""
    exprs, shape = _flat(what, problem)
    return lambdify_flat(problem.symbols, exprs, shape, "numpy")


@functools.lru_cache(maxsize=512)
def jax_function(problem: Problem, what: str):
    """A cached pure JAX function θ -> loss/gradient/... (same quantities as ``numpy_function``)."""
    exprs, shape = _flat(what, problem)
    return lambdify_flat(problem.symbols, exprs, shape, "jax")


@functools.lru_cache(maxsize=512)
def autograd_function(problem: Problem, what: str):
    """A cached autograd-differentiable function θ -> loss (or another quantity)."""
    exprs, shape = _flat(what, problem)
    return lambdify_flat(problem.symbols, exprs, shape, "autograd")
