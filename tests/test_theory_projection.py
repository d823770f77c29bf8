"""``flatland.theory.project`` for losses given only by their value: the same point of Γ as the residual form.

Off Γ, a value-only loss's Hessian has small tangent eigenvalues too; Newton steps with its full
pseudo-inverse went to a critical point of the tangent factor instead of to Γ ((xy − 1)²·(2 + sin z)
from 0.003 off Γ to z = −180). Property: from points a distance `off` from Γ, the value-only and the
residual (Gauss–Newton) projections land on Γ, move at most ~`off`, and agree to second order in `off`
(measured worst: 0.55·off² over 60 random starts, 0.97·off moved)."""
import functools

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

import flatland  # noqa: F401
from flatland.theory import Problem, project

#: (loss as a value, the same zero set as residuals, a point of Γ from two numbers in [0, 1])
VALLEYS = {
    "product x f(z)": ("(x*y-{a})**2*(2+sin(z))", "(x*y-{a})*sqrt(2+sin(z))",
                       lambda a, u, v: [0.5 + 1.5 * u, a / (0.5 + 1.5 * u), 4 * v - 2]),
    "product x (2+z^2)": ("(x*y-{a})**2*(2+z**2)", "(x*y-{a})*sqrt(2+z**2)",
                          lambda a, u, v: [0.5 + 1.5 * u, a / (0.5 + 1.5 * u), 4 * v - 2]),
    "codim 2, curvatures 1:665": ("(x*y-{a})**2+(y*z-1)**2", "x*y-{a}, y*z-1",
                                  lambda a, u, v: [2 + 10 * u, a / (2 + 10 * u), (2 + 10 * u) / a]),
    "codim 2, log": ("log(1+(x*y-{a})**2+(x-z)**2)", "x*y-{a}, x-z",
                     lambda a, u, v: [0.5 + 1.5 * u, a / (0.5 + 1.5 * u), 0.5 + 1.5 * u]),
}


@functools.lru_cache(maxsize=None)
def _forms(name: str, a: float):
    val, res, _ = VALLEYS[name]
    return Problem.from_expr(val.format(a=a)), Problem.from_residuals(res.format(a=a))


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(VALLEYS)), a=st.sampled_from([0.5, 1.0, 4.0]),
       u=st.floats(0, 1), v=st.floats(0, 1), log_off=st.floats(-4, -1.5),
       direction=st.lists(st.floats(-1, 1), min_size=3, max_size=3).filter(lambda d: np.linalg.norm(d) > 0.1))
@example(name="codim 2, log", a=0.5, u=1.0, v=0.0, log_off=-1.5, direction=[0.0, -1.0, 0.0])  # moved 0.22 along Γ
def test_value_only_projection_lands_where_the_residual_one_does(name, a, u, v, log_off, direction):
    by_value, by_residuals = _forms(name, a)
    on_gamma = np.asarray(VALLEYS[name][2](a, u, v), float)
    off = 10.0**log_off
    start = on_gamma + off * np.asarray(direction) / np.linalg.norm(direction)
    p_val, moved_val = project(by_value, start)
    p_res, moved_res = project(by_residuals, start)
    assert project(by_residuals, p_val)[1] == 0.0          # on Γ: its residuals vanish to 1e-12
    assert moved_val <= 1.2 * off and moved_res <= 1.2 * off
    assert np.linalg.norm(p_val - p_res) <= 2 * off**2 + 1e-10


def test_the_audit_point_off_a_product_valley_projects_next_to_it():
    """The case that went to z = −180.4: (xy − 1)²·(2 + sin z) from (1.5, 0.67, 0.4), 0.003 off Γ."""
    by_value, by_residuals = _forms("product x f(z)", 1.0)
    p_val, moved = project(by_value, [1.5, 0.67, 0.4])
    np.testing.assert_allclose(p_val, project(by_residuals, [1.5, 0.67, 0.4])[0], atol=2e-5)
    assert moved < 0.0031


@pytest.mark.parametrize("expr, start", [("log(1+(x**2-1)**2)", 3.0), ("log(1+(x**2-1)**2)", 0.5),
                                         ("(x**2-1)**2*(3+sin(x))", 0.59)])
def test_a_start_where_the_loss_is_concave_still_reaches_gamma(expr, start):
    """Far out log(1 + r²) is concave (and (x² − 1)²(3 + sin x) near x = 0.6 too): H has no positive
    eigenvalue, so there is no Newton step; the gradient step, shortened until L falls, goes on towards Γ.
    These starts were refused as "far from any zero-loss manifold" while the residual form reached x = 1."""
    landed, moved = project(Problem.from_expr(expr), [start])
    np.testing.assert_allclose(landed, [1.0], atol=1e-9)
    assert moved == pytest.approx(abs(start - 1.0), abs=1e-9)
