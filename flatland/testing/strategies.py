"""Hypothesis strategies for plugin authors: keys, valleys and points on them.

``valleys()`` draws sum-of-squares valleys of one fixed family,
``r = a(x)·y`` with ``a(x) = c0 + c1 x + c2 x²`` kept away from zero on
``|x| ≤ 2``, so their zero-loss manifold is ``y = 0``. Each draw is a
:class:`flatland.Loss` carrying both JAX residuals and the matching residual
expression for ``flatland.theory``. ``points_on(loss)`` draws points on Γ.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from hypothesis import strategies as st

from ..contracts import Loss



def keys():
    """PRNG keys from 32-bit seeds."""
    return st.integers(min_value=0, max_value=2**32 - 1).map(jax.random.PRNGKey)


def _fmt(c: float) -> str:
    return repr(float(c))


def _valley_from(c0: float, c1: float, c2: float, kappa: float) -> Loss:
    expr = f"({_fmt(c0)} + {_fmt(c1)}*x + {_fmt(c2)}*x**2)*y"

    def residuals(t):
        return jnp.stack([(c0 + c1 * t[0] + c2 * t[0] ** 2) * t[1]])

    return Loss(
        name="drawn-valley", residuals=residuals, kappa=kappa, variables=("x", "y"),
        residual_exprs=(expr,), expr=f"{_fmt(kappa)}*({expr})**2", point=(0.5, 0.0),
        extras={"coefficients": (c0, c1, c2)},
    )


@st.composite
def valleys(draw, kappa: float = 0.5):
    """A valley r = (c0 + c1 x + c2 x²)·y with 1 ≤ c0 ≤ 3 and |c1|, |c2| ≤ 0.25, so a(x) ≥ 0 on |x| ≤ 2."""
    # rounded to 6 decimals: exact, short literals (the theory parses them as rationals)
    c0 = round(draw(st.floats(min_value=1.0, max_value=3.0, allow_nan=False)), 6)
    c1 = round(draw(st.floats(min_value=-0.25, max_value=0.25, allow_nan=False)), 6)
    c2 = round(draw(st.floats(min_value=-0.125, max_value=0.125, allow_nan=False)), 6)
    return _valley_from(c0, c1, c2, kappa)


def points_on(loss: Loss, low: float = -1.5, high: float = 1.5):
    """Points (x, 0) on the manifold y = 0 of a drawn valley."""
    return st.floats(min_value=low, max_value=high, allow_nan=False).map(lambda x: (x, 0.0))
