"""SED at finite μ: the general rule with SED's gradient-driven probe noise against exact moments.

On valleys L = ½ f(x)² y² (Γ: y = 0, normal curvature λ = f²) the exact SED
step's moments are Gaussian expectations of polynomials, computed here with
SymPy independently of the theory: E[y'² | x, y] = c0 + c1 y² + O(y⁴) gives
the stationary E y² = c0 / (1 − c1), and the mean x-step p0 + p2 y² the drift
p0 + p2·E y². The theory must match this within 0.3% at μs²λ up to 0.15 (its
left-out terms are O(s²/λ) ≈ 10⁻⁴ here); leading order misses by ≈ 1.4 μs²λ·(share
of probe noise), which the second test shows is resolvable.
Also: the linear solve of the generalised Lyapunov equation against plain
fixed-point iteration of the second-moment recursion on a codimension-2 normal block.
"""
import numpy as np
import sympy as sp
from hypothesis import given, settings, strategies as st

import flatland  # noqa: F401
from flatland.theory import Problem, predict
from flatland.theory import _rule
from named_laws import law

X, Y, A, B, S_, MU = sp.symbols("x y a b s mu", real=True)


def _gauss(expr):
    """E over a, b ~ N(0, s²) independent, of a polynomial in a, b."""
    out = 0
    for (i, j), c in sp.Poly(sp.expand(expr), A, B).terms():
        if i % 2 or j % 2:
            continue
        out += c * sp.factorial2(i - 1) * sp.factorial2(j - 1) * S_ ** (i + j)
    return sp.expand(out)


def exact_sed_drift(f, x, mu, s):
    """Per-step drift of x for SED on ½ f(x)² y² at (x, 0), from exact moments (x held fixed)."""
    loss = lambda u, v: sp.Rational(1, 2) * f(u) ** 2 * v**2  # noqa: E731
    D = loss(X + A, Y + B) - loss(X, Y)
    second = sp.Poly(_gauss((Y - MU * B * D) ** 2), Y)
    xstep = sp.Poly(_gauss(-MU * A * D), Y)
    vals = {X: x, MU: mu, S_: s}
    c0, c1 = (float(second.coeff_monomial(Y**k).subs(vals)) for k in (0, 2))
    p0, p2 = (float(xstep.coeff_monomial(Y**k).subs(vals)) for k in (0, 2))
    return p0 + p2 * c0 / (1 - c1)


def _valley(a, b):
    return Problem.from_residuals([f"(1 + {a}*x + {b}*x**2)*y"], kappa=0.5)


@settings(max_examples=8, deadline=None)
@given(a=st.floats(-0.5, 0.5).map(lambda v: round(v, 3)), b=st.floats(0.2, 1.0).map(lambda v: round(v, 3)),
       x=st.floats(0.3, 1.2), eta_lam=st.floats(0.02, 0.15))
def test_sed_finite_mu_drift_matches_exact_moments(a, b, x, eta_lam):
    f = lambda u: 1 + a * u + b * u**2  # noqa: E731
    lam = float(f(x)) ** 2
    s = 0.02
    mu = eta_lam / (s * s * lam)
    exact = exact_sed_drift(f, x, mu, s)
    pred = predict(_valley(a, b), {"x": x, "y": 0.0}, law("sed"), hyper={"learner": {"lr": mu, "sigma": s}})
    assert abs(pred.drift_finite_eta[1]) < 1e-12 * abs(exact)
    assert abs(pred.drift_finite_eta[0] / exact - 1) < 0.003, (pred.drift_finite_eta[0], exact)


def test_leading_order_misses_at_mu_s2_lambda_one_tenth():
    """The finite-μ term is what the check resolves: leading order is ≥ 2% off at μs²λ = 0.1."""
    f = lambda u: 1 + u**2  # noqa: E731
    s, x = 0.02, 0.5
    mu = 0.1 / (s * s * f(x) ** 2)
    exact = exact_sed_drift(f, x, mu, s)
    pred = predict(_valley(0, 1), {"x": x, "y": 0.0}, law("sed"), hyper={"learner": {"lr": mu, "sigma": s}})
    assert abs(pred.drift_leading[0] / exact - 1) > 0.02
    assert abs(pred.drift_finite_eta[0] / exact - 1) < 0.003


def test_generalised_lyapunov_solve_matches_fixed_point_iteration():
    """S = (I−ηH)S(I−ηH) + C_N + P_N 𝒦(HSH) P_N by iteration, 𝒦 from sampling-free bilinear K."""
    rng = np.random.default_rng(3)
    d, m, eta = 4, 2, 0.08
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    lam = np.array([1.3, 2.1])
    U_n = Q[:, :m]
    H = U_n @ np.diag(lam) @ U_n.T
    R = rng.standard_normal((d, d))
    C = 1e-3 * R @ R.T
    W = rng.standard_normal((d, d))

    def K(g):  # a quadratic, PSD, anisotropic gradient covariance
        Wg = W @ g
        return eta**2 * (np.outer(Wg, Wg) + 0.5 * (g @ g) * np.eye(d))

    S, EK = _rule.with_gradient_noise(np, lam, U_n, C, eta, K)
    P_N = U_n @ U_n.T
    T = np.eye(d) - eta * H
    it = np.zeros((d, d))
    for _ in range(2000):
        G = H @ it @ H
        w, V = np.linalg.eigh(G)
        EK_it = sum(w[k] * K(V[:, k]) for k in range(d))
        it = T @ it @ T + P_N @ (C + EK_it) @ P_N
    np.testing.assert_allclose(S, it, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(EK, EK_it, rtol=1e-8, atol=1e-14)


def test_the_smoothings_next_term_is_warned_about_where_it_matters():
    """On log(1 + (xy − 1)²), s = 0.05, an independent simulation measured SED's drift 5% off the prediction,
    with no warning (s²/λ = 3e-4 looked harmless): along Γ the next smoothing term (s⁴/8)Δ²L pulls 3.2% as
    hard as the kept potential (s²/2) tr H. On (xy − 1)², a sum of squares, and on 10(xy − 1) at s = 1, Δ²L is
    constant (quadratic residuals), moves nothing, and nothing is said (a review found the first version,
    which compared the potentials' sizes, warning there)."""
    hyper = {"learner": {"lr": 4.0, "sigma": 0.05}}
    warned = predict(Problem.from_expr("log(1+(x*y-1)**2)"), [2.0, 0.5], law("sed"), hyper=hyper).warnings
    assert any("(s⁴/8)Δ²L pulls along Γ 0.032 as hard" in w for w in warned), warned
    for problem, h in ((Problem.from_expr("(x*y-1)**2"), hyper),
                       (Problem.from_residuals("10*(x*y-1)"), {"learner": {"lr": 0.001, "sigma": 1.0}})):
        quiet = predict(problem, [2.0, 0.5], law("sed"), hyper=h).warnings
        assert not any("Δ²L" in w for w in quiet), quiet


def test_large_mu_is_warned_about_with_the_onsets_of_heavy_tails():
    """Beyond μs²λ = 0.1 SED's prediction lost accuracy (an observable on xy = 1: 2.3% off at 0.2, 7.5% at
    0.27, an independent simulation agreeing with the measurement); the warning's onsets of infinite moments
    are where E(1 − az)^2k = 1 for z ~ χ²₁ (E z^j = (2j − 1)!!)."""
    from math import comb, prod

    from flatland_plugins.learners import SED_TAIL_ONSETS

    def moment(a, two_k):
        return sum(comb(two_k, j) * (-a) ** j * prod(range(1, 2 * j, 2)) for j in range(two_k + 1))

    for two_k, onset in SED_TAIL_ONSETS:
        assert moment(onset - 0.001, two_k) < 1 < moment(onset + 0.001, two_k)
    problem = Problem.from_residuals("x*y - 1")
    at = [1.5, 2 / 3]                                              # λ = x² + y² ≈ 2.69
    for mu, warned in ((14.0, False), (30.0, True)):               # μs²λ ≈ 0.094 and 0.20
        w = predict(problem, at, law("sed"), hyper={"learner": {"lr": mu, "sigma": 0.05}}).warnings
        assert any("power-law tails" in x for x in w) == warned, w
