"""ReLU networks, one activation pattern at a time: an inactive unit gives zero Hessian rows.

A one-hidden-layer net with 2 inputs, 2 hidden units, 1 output and 2 data
points, written as residual expressions with relu. Unit 2 is inactive on both
inputs, so its input weights, bias and output weight (d_in + 1 + d_out = 4
parameters) must have identically zero Hessian rows and columns throughout the
activation pattern — symbolically, not just at one point.
"""
import numpy as np
import sympy as sp

import flatland  # noqa: F401
from flatland.theory import Problem, hessian_autograd, hessian_jax, hessian_sympy
from named_laws import predict_named as predict
from flatland.theory import _symbolic as S

DATA = [((1.0, 0.5), 1.0), ((-0.5, 1.0), 0.8)]
NAMES = ("a11", "a12", "a21", "a22", "b1", "b2", "n1", "n2")  # unit j: input weights aj1, aj2, bias bj, output nj


def _net():
    residuals = [
        f"n1*relu(a11*({u}) + a12*({v}) + b1) + n2*relu(a21*({u}) + a22*({v}) + b2) - ({t})"
        for (u, v), t in DATA
    ]
    return Problem.from_residuals(residuals, kappa=0.5, variables=NAMES)


#: unit 1 active on both inputs and fitting the data exactly (a point on Γ); unit 2 inactive
POINT = dict(a11=0.4, a12=0.8, a21=-1.0, a22=-1.0, b1=0.2, b2=-0.5, n1=1.0, n2=0.7)
UNIT2 = ("a21", "a22", "b2", "n2")


def _values(point=POINT):
    return [point[v] for v in NAMES]


def test_point_is_on_the_manifold_with_unit_two_inactive():
    p = _net()
    r = [float(e.subs(dict(zip(p.symbols, _values())))) for e in p.residual_exprs]
    np.testing.assert_allclose(r, 0, atol=1e-15)
    for (u, v), _ in DATA:
        assert POINT["a21"] * u + POINT["a22"] * v + POINT["b2"] < 0


def test_inactive_unit_has_identically_zero_hessian_rows_in_its_pattern():
    p = _net()
    H = S.specialize(S.hessian(p), p.symbols, _values())  # the activation pattern at POINT
    assert not H.has(sp.Max, sp.Heaviside, sp.DiracDelta)
    idx = [NAMES.index(n) for n in UNIT2]
    for i in idx:
        for j in range(len(NAMES)):
            assert sp.simplify(H[i, j]) == 0 and sp.simplify(H[j, i]) == 0, (NAMES[i], NAMES[j])
    # the active unit's block is not zero: the test can fail
    assert sp.simplify(H[NAMES.index("n1"), NAMES.index("n1")]) != 0


def test_inactive_unit_adds_d_in_plus_1_plus_d_out_zero_eigenvalues():
    p = _net()
    H = hessian_sympy(p, _values())
    idx = [NAMES.index(n) for n in UNIT2]
    np.testing.assert_array_equal(H[idx, :], 0)
    np.testing.assert_array_equal(H[:, idx], 0)
    active = [i for i in range(len(NAMES)) if i not in idx]
    eig_active = np.linalg.eigvalsh(H[np.ix_(active, active)])
    eig = np.linalg.eigvalsh(H)
    assert np.sum(np.abs(eig) < 1e-12) == np.sum(np.abs(eig_active) < 1e-12) + 4
    np.testing.assert_allclose(hessian_jax(p, _values()), H, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hessian_autograd(p, _values()), H, rtol=1e-9, atol=1e-12)


def test_kink_warnings_and_convention_at_a_tie():
    p = _net()
    # unit 2 exactly at its kink on the first input: a21*1 + a22*0.5 + b2 = 0
    at_kink = dict(POINT, a21=1.0, a22=0.0, b2=-1.0)
    H = hessian_sympy(p, _values(at_kink))
    np.testing.assert_allclose(hessian_jax(p, _values(at_kink)), H, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hessian_autograd(p, _values(at_kink)), H, rtol=1e-9, atol=1e-12)
    pred = predict(p, _values(at_kink), "update", sigma=0.01, eta=0.05)
    assert any("at a ReLU kink" in w and "relu′(0) = 0" in w for w in pred.warnings)
    near = dict(POINT, a21=1.0, a22=0.0, b2=-1.0 + 1e-4)
    pred = predict(p, _values(near), "update", sigma=0.01, eta=0.05)
    assert any("near a ReLU kink" in w for w in pred.warnings)
    far = predict(p, _values(), "update", sigma=0.01, eta=0.05)
    assert not any("kink" in w for w in far.warnings)
