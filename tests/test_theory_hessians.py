"""Three independent Hessians (SymPy, JAX, autograd) agree to relative 1e-9 in float64."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import flatland
from flatland.theory import Problem, hessian_autograd, hessian_jax, hessian_sympy


def _agree(problem, point):
    hs = hessian_sympy(problem, point)
    hj = hessian_jax(problem, point)
    ha = hessian_autograd(problem, point)
    scale = max(1.0, float(np.max(np.abs(hs))))
    np.testing.assert_allclose(hj, hs, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(ha, hs, rtol=1e-9, atol=1e-9 * scale)
    return hs


def _builtin_losses():
    registry = flatland.assemble().registry
    out = []
    for entry in registry.entries("losses"):
        loss = entry.factory()
        if loss.expr or loss.residual_exprs:
            out.append(loss)
    return out


BUILTINS = _builtin_losses()


@pytest.mark.parametrize("loss", BUILTINS, ids=[l.name for l in BUILTINS])
def test_three_hessians_agree_on_builtin_losses(loss):
    problem = Problem.from_loss(loss)
    point = np.asarray(loss.point, float)
    H = _agree(problem, point)
    assert np.all(np.isfinite(H))
    _agree(problem, point + np.linspace(0.1, 0.3, problem.dim))


def test_there_are_builtin_valleys_to_check():
    assert {"fig5a", "half-x2y2", "stretched", "opposite-3d"} <= {l.name for l in BUILTINS}


#: a fixed family using every whitelisted function; its coefficients a..h are variables
#: too, so one derivation covers all members and the Hessian is taken in all of them
FAMILY = Problem.from_residuals([
    "(1 + a*sin(x) + b*tanh(y))*z + c*exp(-x**2)*z**2",
    "sqrt(1 + x**2)*(y - f*x) + g*log(2 + cos(z))*z + h*relu(x + y)*z",
    "Abs(a + x)*z*y + Max(x, 0.5*y)*z",
], kappa=0.5)


@settings(max_examples=12)
# no subnormals: XLA on the CPU flushes them to zero (jit(v > 0) is False at v = 2.2e-313), so at a
# subnormal distance from a kink JAX's side of relu/Max differs from SymPy's and autograd's (found by this test)
@given(st.lists(st.floats(-1.5, 1.5, allow_nan=False, allow_subnormal=False), min_size=9, max_size=9))
def test_three_hessians_agree_on_drawn_valleys(values):
    assert FAMILY.variables == ("a", "b", "c", "f", "g", "h", "x", "y", "z")
    _agree(FAMILY, values)


def test_kink_convention_is_shared_at_exact_ties():
    """relu′(0) = 0 (derivative of Max at a tie is 0) in SymPy, JAX and autograd alike."""
    p = Problem.from_expr("relu(x*y - 1)**2 + Abs(x)*y**2 + Max(x, y, 0)*x")
    for point in [(1.0, 1.0), (0.0, 0.0), (0.0, 1.0), (2.0, 1.0)]:
        _agree(p, point)
    # at x*y = 1: relu(x*y-1)**2 has second derivative 2·relu′² = 0 under the convention;
    # Max(x, y, 0)*x at the tie x = y = 1 contributes 2·Max′ = 0 to H_xx
    assert hessian_sympy(p, (1.0, 1.0))[0, 0] == 0.0
