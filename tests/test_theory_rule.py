"""The general rule reduces to the closed forms on random valleys and points.

C = s²I must give the sum-log drift −(s²/4) P_T∇ Σ log λ, C ∝ H the trace drift,
at leading order and at finite η. The general rule (eigen-decomposition of H,
third derivatives, discrete Lyapunov S) and the closed forms (SymPy gradients
of principal-minor sums; P_T = I − Jᵀ(JJᵀ)⁻¹J) share no code beyond the parsed
loss. Valleys have a curved Γ (y = g x²), so P_T is not axis aligned.
"""
import numpy as np
import sympy as sp
from hypothesis import assume, given, settings, strategies as st

import flatland  # noqa: F401
from flatland.theory import CovarianceContext, Problem, general_drift
from flatland.theory import _closed
from flatland_plugins.learners import sed_covariance
from named_laws import law, registry
from flatland.theory._compile import curvature_function
from flatland.theory._lambdify import numpy_function

RESIDUALS = ["(p + x)*(y - g*x**2) + q*z", "s*x*(y - g*x**2) + (1 + x**2)*z + c*(y - g*x**2)**2"]
#: the valley family, its coefficients c, g, p, q, s being coordinates too: one derivation, many valleys
FAMILY = Problem.from_residuals(RESIDUALS, kappa=0.5)
#: the same loss without residuals: the rule then runs on ∇²L and its third derivatives
FAMILY_LOSS_ONLY = Problem(FAMILY.variables, FAMILY.loss_expr, None, None)
M = 2  # codimension of Γ


def _point(c, g, p, q, s, x):
    values = dict(c=c, g=g, p=p, q=q, s=s, x=x, y=g * x**2, z=0.0)
    assert FAMILY.variables == ("c", "g", "p", "q", "s", "x", "y", "z")
    return np.array([values[v] for v in FAMILY.variables])


def _tangent_projector(problem, theta):
    J = numpy_function(problem, "jacobian")(theta)
    return np.eye(len(theta)) - J.T @ np.linalg.solve(J @ J.T, J)


def _closed_forms(problem, noise, theta, P_T, eta, sigma):
    L = law(noise)
    values = _closed.hyper_values(_closed.hyper_symbols(L), {"learner": {"lr": eta}, "noise": {"sigma": sigma}})
    lead, fin = _closed.drift_gradient_function(problem, L, M)(theta, *values)
    return P_T @ lead, P_T @ fin


def _close(a, b, C, eta):
    """Equal to 1e-8 of the drift's size, or of its natural scale |C|/η where it vanishes by symmetry."""
    scale = max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-4 * np.max(np.abs(C)) / eta)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-8 * scale)


coef = st.floats(-1.0, 1.0, allow_nan=False)


@settings(max_examples=15)
@given(c=coef, g=coef, p=st.floats(1.0, 2.0), q=coef, s=coef, x=st.floats(-0.8, 0.8),
       s_noise=st.floats(0.01, 0.5), eta=st.floats(0.01, 0.2))
def test_general_rule_reduces_to_closed_forms(c, g, p, q, s, x, s_noise, eta):
    theta = _point(c, g, p, q, s, x)
    assume(abs((p + x) * (1 + x**2) - q * s * x) > 0.2)  # JJᵀ well conditioned: Γ has codimension 2 here
    P_T = _tangent_projector(FAMILY, theta)
    H, dH, _ = curvature_function(FAMILY, "numpy")(theta)
    assume(eta * np.linalg.eigvalsh(H)[-1] < 1.5)
    kappa = 0.5
    for problem in (FAMILY, FAMILY_LOSS_ONLY):  # Gauss–Newton (2κJᵀJ) and full ∇²L
        H, dH, _ = curvature_function(problem, "numpy")(theta)
        np.testing.assert_allclose(H, H.T, atol=1e-12)
        for finite in (False, True):
            # C = s²I -> sum-log (update noise with σ = s)
            C = s_noise**2 * np.eye(len(theta))
            v, _, _ = general_drift(np, H, dH, C, eta, M, finite)
            _close(v, _closed_forms(FAMILY, "update", theta, P_T, eta, s_noise)[finite], C, eta)
            # C = c·H -> trace (label noise with 2κη²σ² = c)
            c_h = 0.3 * s_noise
            sigma = np.sqrt(c_h / (2 * kappa * eta**2))
            v, _, _ = general_drift(np, H, dH, c_h * H, eta, M, finite)
            _close(v, _closed_forms(FAMILY, "label", theta, P_T, eta, sigma)[finite], c_h * H, eta)


@settings(max_examples=3)
@given(g=st.integers(-2, 2), p=st.integers(1, 3), q=st.integers(-2, 2), x=st.floats(-0.7, 0.7))
def test_closed_forms_on_drawn_numeric_valleys(g, p, q, x):
    """Valleys with drawn numeric coefficients, through the noise-model covariance functions."""
    residuals = [r.replace("g", f"({g}/2)").replace("p", f"{p}").replace("q", f"({q})")
                 .replace("s", "0.5").replace("c", "0.25") for r in RESIDUALS]
    problem = Problem.from_residuals(residuals, kappa=0.5)
    assert problem.variables == ("x", "y", "z")
    theta = np.array([x, g / 2 * x**2, 0.0])
    assume(abs((p + x) * (1 + x**2) - q * 0.5 * x) > 0.2)
    P_T = _tangent_projector(problem, theta)
    H, dH, J = curvature_function(problem, "numpy")(theta)
    eta = 0.05
    for noise, sigma in (("update", 0.1), ("label", 0.1)):  # (gradient/uniform-label rescale these)
        C = law(noise).noise.covariance(CovarianceContext(H=H, eye=np.eye(3), eta=eta, kappa=0.5,
                                                          hyper={"sigma": sigma}, J=J))
        for finite in (False, True):
            v, _, _ = general_drift(np, H, dH, C, eta, M, finite)
            _close(v, _closed_forms(problem, noise, theta, P_T, eta, sigma)[finite], C, eta)
    # without residuals the closed form reads pdet off ∇²L's characteristic polynomial (principal minors)
    loss_only = Problem(problem.variables, problem.loss_expr, None, None)
    H, dH, _ = curvature_function(loss_only, "numpy")(theta)
    for finite in (False, True):
        v, _, _ = general_drift(np, H, dH, 0.01 * np.eye(3), eta, M, finite)
        _close(v, _closed_forms(loss_only, "update", theta, P_T, eta, 0.1)[finite], 0.01 * np.eye(3), eta)


def test_covariances_serve_sympy_and_arrays_alike():
    """Every built-in noise model's declared C(θ), and SED's, is the same formula for SymPy and arrays."""
    H_s = sp.Matrix([[2, 1], [1, 3]])
    H_n = np.array([[2.0, 1.0], [1.0, 3.0]])
    fns = {name: registry().create("noise", name).covariance for name in registry().names("noise")
           if registry().create("noise", name).overrides("covariance")}
    fns["sed"] = sed_covariance
    assert {"none", "update", "gradient", "label", "uniform-label", "minibatch"} <= set(fns)
    for name, fn in fns.items():
        hyper_s = {"sigma": sp.Rational(1, 10), "width": sp.Rational(6, 10), "lr": sp.Rational(7, 10)}
        C_s = fn(CovarianceContext(H=H_s, eye=sp.eye(2), eta=sp.Rational(1, 20), kappa=sp.Rational(1, 2),
                                   hyper=hyper_s, theta=sp.Matrix([1, 2]), backend="sympy"))
        C_n = fn(CovarianceContext(H=H_n, eye=np.eye(2), eta=0.05, kappa=0.5, theta=np.array([1.0, 2.0]),
                                   hyper={k: float(v) for k, v in hyper_s.items()}))
        np.testing.assert_allclose(np.array(sp.Matrix(C_s).tolist(), dtype=float), C_n, rtol=1e-14, err_msg=name)
    ctx = CovarianceContext(H=H_n, eye=np.eye(2), eta=0.05, kappa=0.5, hyper={"sigma": 0.1, "width": 0.6})
    np.testing.assert_allclose(fns["update"](ctx), 0.01 * np.eye(2))
    np.testing.assert_allclose(fns["gradient"](ctx), 0.05**2 * 0.01 * np.eye(2))
    np.testing.assert_allclose(fns["label"](ctx), 2 * 0.5 * 0.05**2 * 0.01 * H_n)
    np.testing.assert_allclose(fns["uniform-label"](ctx), 2 * 0.5 * 0.05**2 * (0.36 / 12) * H_n)
    np.testing.assert_allclose(fns["minibatch"](ctx), 0 * H_n)


def test_sed_covariance_matches_monte_carlo():
    """C_sed = μ² Cov(π ½πᵀHπ), π ~ N(0, s²I): the Isserlis closed form vs sampling."""
    rng = np.random.default_rng(0)
    H = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]])
    s, mu = 0.3, 0.7
    pi = s * rng.standard_normal((400_000, 3))
    step = mu * pi * (0.5 * np.einsum("ni,ij,nj->n", pi, H, pi))[:, None]
    C_mc = step.T @ step / len(step)
    C = sed_covariance(CovarianceContext(H=H, eye=np.eye(3), eta=mu * s * s, kappa=0.5,
                                         hyper={"lr": mu, "sigma": s}))
    np.testing.assert_allclose(C_mc, C, atol=0.02 * np.max(np.abs(C)))


def test_covariance_context_dH_is_the_same_third_derivative_in_every_backend():
    """A plugin's covariance may read ctx.dH: SymPy and NumPy gave different normal parts (∂(2κJᵀJ) vs ∂∇²L)."""
    import numpy as np
    import sympy as sp

    from flatland.theory import Problem
    from flatland.theory import _symbolic as S
    from flatland.theory._closed import _third_on_gamma
    from flatland.theory._compile import curvature_function

    for res, pt in ((["x*y - 1", "x**2*z - 2"], [2.0, 0.5, 0.5]), (["x**2 + y**2 - 1"], [0.6, 0.8, 0.3])):
        pr = Problem.from_residuals(res, kappa=0.5, variables="x,y,z")
        sym = _third_on_gamma(pr, S.curvature_matrix(pr), sp.Rational(1, 2))
        subs = dict(zip(pr.symbols, pt))
        sym_num = np.array([np.array(M.subs(subs).tolist(), float) for M in sym])
        num = np.asarray(curvature_function(pr, "numpy")(np.array(pt))[1])
        np.testing.assert_allclose(sym_num, num, atol=1e-12)
        plain = np.array([np.array(S.curvature_matrix(pr).diff(s).subs(subs).tolist(), float) for s in pr.symbols])
        assert np.abs(plain - num).max() > 0.1      # the residual-curvature term matters on these curved Γ
