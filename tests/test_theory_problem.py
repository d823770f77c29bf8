"""Problems: residuals read off losses, registered losses, points; the worked examples of the theory exactly."""
import numpy as np
import pytest
import sympy as sp

import flatland
from flatland.errors import UserError
from flatland.theory import ETA, SIGMA, Problem, regularizer, symbolic_drift
from named_laws import law
from flatland.theory._parse import symbol
from flatland.theory._problem import parse_point

x, y, z = symbol("x"), symbol("y"), symbol("z")


@pytest.mark.parametrize("text, kappa, residuals", [
    ("(x*y)**2", 1, [x * y]),
    ("0.5*x**2*y**2", sp.Rational(1, 2), [x * y]),
    ("0.5*(1+x**2)**2*y**2", sp.Rational(1, 2), [(1 + x**2) * y]),
    ("0.5*((x*y)**2 + ((3 - x)*z)**2)", sp.Rational(1, 2), [x * y, (3 - x) * z]),
    ("x**2 + 2*y**2", 1, [x, sp.sqrt(2) * y]),
    ("(x**2 + y**2)*z**2", 1, [x * z, y * z]),
])
def test_residuals_read_off_constant_times_sum_of_squares(text, kappa, residuals):
    p = Problem.from_expr(text)
    assert p.kappa == kappa
    assert [sp.expand(r) for r in p.residual_exprs] == [sp.expand(r) for r in residuals]
    assert sp.expand(p.kappa * sum(r**2 for r in p.residual_exprs) - p.loss_expr) == 0


@pytest.mark.parametrize("text", ["x*y", "x**2*y**2 + x*y**3", "x**2 + 1", "exp(x)*y"])
def test_no_residuals_when_not_a_sum_of_squares(text):
    p = Problem.from_expr(text)
    assert p.residual_exprs is None and p.kappa is None
    with pytest.raises(UserError, match="--residuals"):
        p.require_residuals("label noise")


def test_variables_alphabetical_unless_given_and_problems_hash_by_content():
    assert Problem.from_expr("(z*a)**2").variables == ("a", "z")
    assert Problem.from_expr("(z*a)**2", "z,a").variables == ("z", "a")
    assert Problem.from_residuals("x*y", kappa=1) == Problem.from_residuals(["x*y"], kappa=1.0)
    assert hash(Problem.from_residuals("x*y", kappa=1)) == hash(Problem.from_residuals(["x*y"], kappa=1.0))
    assert Problem.from_residuals("x*y", kappa=1) != Problem.from_residuals("x*y", kappa=0.5)


def test_registered_losses_agree_with_their_residuals():
    """Every built-in loss with both forms has expr == κ Σ r² (symbolically)."""
    registry = flatland.assemble().registry
    checked = 0
    for entry in registry.entries("losses"):
        loss = entry.factory()
        if not (loss.expr and loss.residual_exprs):
            continue
        from_res = Problem.from_loss(loss)
        from_expr = Problem.from_expr(loss.expr, loss.variables)
        assert sp.expand(from_res.loss_expr - from_expr.loss_expr) == 0, entry.name
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("text, message", [
    ("x1,y=0", "NAME=VALUE"),
    ("x=1,z=0", "'z' in the point is not in the expression"),
    ("x=1", "no value for y"),
    ("x=1,y=a", "'a' is not a number"),
    ("x=1,x=2,y=0", "given twice"),
    ("x=nan,y=0", "'nan' is not a number"),
])
def test_bad_points(text, message):
    with pytest.raises(UserError, match=message):
        parse_point(text, ("x", "y"))


# Worked examples, exactly: (loss, noise, expected drift along x on Γ: y = 0)
WORKED = [
    ("0.5*x**2*y**2", "label", -ETA**2 * SIGMA**2 * x / 2),
    ("0.5*x**2*y**2", "update", -SIGMA**2 / (2 * x)),
    ("(x*y)**2", "label", -2 * ETA**2 * SIGMA**2 * x),
    ("(x*y)**2", "update", -SIGMA**2 / (2 * x)),
    ("0.5*(1+x**2)**2*y**2", "label", -ETA**2 * SIGMA**2 * x * (1 + x**2)),
    ("0.5*(1+x**2)**2*y**2", "update", -SIGMA**2 * x / (1 + x**2)),
]


@pytest.mark.parametrize("text, noise, expected", WORKED)
def test_worked_examples_exactly(text, noise, expected):
    v = symbolic_drift(Problem.from_expr(text), law(noise)).subs(y, 0)
    assert sp.simplify(v[0] - expected) == 0
    assert sp.simplify(v[1]) == 0


@pytest.mark.parametrize("text, noise, expected", [
    # finite η: each eigen-direction carries 2/(2 − ηλ); here λ = x², 2x², (1+x²)²
    ("0.5*x**2*y**2", "label", -ETA**2 * SIGMA**2 * x / (2 - ETA * x**2)),
    ("(x*y)**2", "update", -SIGMA**2 / (2 * x) * 2 / (2 - 2 * ETA * x**2)),
    ("0.5*(1+x**2)**2*y**2", "label", -2 * ETA**2 * SIGMA**2 * x * (1 + x**2) / (2 - ETA * (1 + x**2) ** 2)),
])
def test_worked_examples_finite_eta_exactly(text, noise, expected):
    v = symbolic_drift(Problem.from_expr(text), law(noise), finite_eta=True).subs(y, 0)
    assert sp.simplify(v[0] - expected) == 0


def test_regularizers_never_use_eigenvalues():
    p = Problem.from_expr("0.5*((x*y)**2 + ((3 - x)*z)**2)")
    # Φ with drift = −P_T∇Φ: (σ²/4) log pdet H for update noise, (κη²σ²/2) tr H for label noise
    R = regularizer(p, law("update"), 2) / (SIGMA**2 / 4)
    assert sp.simplify(R.subs({y: 0, z: 0}) - sp.log(x**2 * (3 - x) ** 2)) == 0
    trace = regularizer(p, law("label"), 2) / (ETA**2 * SIGMA**2 / 4)
    assert sp.simplify(trace.subs({y: 0, z: 0}) - (x**2 + (3 - x) ** 2)) == 0
    assert not R.has(sp.RootOf, sp.CRootOf)


def test_opposite_valley_drifts_opposite_ways_for_update_and_label():
    p = Problem.from_expr("0.5*((x*y)**2 + ((3 - x)*z)**2)")
    at = {x: 1, y: 0, z: 0}
    update = symbolic_drift(p, law("update")).subs(at)[0]
    label = symbolic_drift(p, law("label")).subs(at)[0]
    assert sp.simplify(update + SIGMA**2 / 4) == 0          # −σ²/4 (2/x − 2/(3−x)) at x = 1
    assert sp.simplify(label - ETA**2 * SIGMA**2 / 2) == 0   # −(η²σ²/4)(2x − 2(3−x)) at x = 1


def test_a_problem_built_from_plain_sympy_symbols_is_derived_like_a_parsed_one():
    """``sympy.symbols("x y z")`` are not declared real; the derivation told them from flatland's real x, y, z,
    so the drift came out 0 and predict() blamed "a residual raised to a power above 1"."""
    import sympy as sp

    from flatland.theory import predict

    x, y, z = sp.symbols("x y z")
    res = (1 + x**2) * (z - x * y)
    plain = Problem(("x", "y", "z"), sp.Rational(1, 2) * res**2, (res,), sp.Rational(1, 2))
    parsed = Problem.from_residuals("(1 + x**2)*(z - x*y)")
    hyper = {"learner": {"lr": 0.05}, "noise": {"sigma": 0.01}}
    got, want = (predict(p, (1.0, 0.5, 0.5), law("update"), hyper=hyper).drift_finite_eta for p in (plain, parsed))
    assert np.any(np.asarray(want) != 0) and np.allclose(got, want, rtol=1e-12, atol=0)
    with pytest.raises(UserError, match="symbol.s. w that are not among the variables"):
        Problem(("x", "y"), (x * y - sp.Symbol("w")) ** 2)
