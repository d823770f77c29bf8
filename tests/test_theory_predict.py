"""``predict``: projection onto Γ, tangent space, drift numbers and regime warnings."""
import json

import numpy as np
import pytest

import flatland  # noqa: F401
from flatland.errors import UserError
from flatland.theory import Problem, project
from named_laws import predict_named as predict

FIG5A = Problem.from_expr("(x*y)**2")
STRETCHED = Problem.from_expr("0.5*(1+x**2)**2*y**2")


def test_prediction_json_has_the_promised_keys_and_numbers():
    pred = predict(FIG5A, {"x": 2.0, "y": 0.0}, "update", sigma=0.01, eta=0.05, observable="x")
    out = json.loads(json.dumps(pred.to_json()))
    for key in ("point", "variables", "hessian", "eigenvalues", "tangent_basis", "rank", "regularizer",
                "regularizer_finite_eta", "drift_leading", "drift_finite_eta", "warnings",
                "observable_drift_leading", "observable_drift_finite_eta", "observable_drift_without_ito"):
        assert key in out, key
    assert out["variables"] == ["x", "y"] and out["point"] == [2.0, 0.0] and out["rank"] == 1
    np.testing.assert_allclose(out["hessian"], [[0, 0], [0, 8]], atol=1e-15)     # 2κx² with κ = 1
    np.testing.assert_allclose(out["eigenvalues"], [0, 8], atol=1e-15)
    np.testing.assert_allclose(out["tangent_basis"], [[1, 0]])
    np.testing.assert_allclose(out["drift_leading"], [-1e-4 / 4, 0], rtol=1e-12)  # −σ²/(2x)
    lam = 8
    np.testing.assert_allclose(out["drift_finite_eta"], [-1e-4 / 4 * 2 / (2 - 0.05 * lam), 0], rtol=1e-12)
    # c = x is linear: no Itô term
    assert out["observable_drift_leading"] == pytest.approx(out["drift_leading"][0], rel=1e-12)


@pytest.mark.parametrize("noise, sigma, expected", [
    ("label", 0.1, -(0.05**2) * 0.1**2 * 1.5 * (1 + 1.5**2)),   # −η²σ²x(1+x²)
    ("update", 0.1, -(0.1**2) * 1.5 / (1 + 1.5**2)),             # −σ²x/(1+x²)
    ("gradient", 0.1, -(0.05 * 0.1) ** 2 * 1.5 / (1 + 1.5**2)),  # update with σ = ησ_g
    ("uniform-label", 0.3, -(0.05**2) * (0.09 / 12) * 1.5 * (1 + 1.5**2)),  # σ² = w²/12
    # SED: −(μs⁴/2) ∂x (1+x²)² from its potential, times 1 + (15/8)μs²λ from its probe noise (λ = (1+x²)²)
    ("sed", 0.1, -(0.05 * 0.1**4 / 2) * 2 * (1 + 1.5**2) * 2 * 1.5 * (1 + 15 / 8 * 0.05 * 0.1**2 * (1 + 1.5**2) ** 2)),
])
def test_leading_drift_on_the_stretched_valley(noise, sigma, expected):
    pred = predict(STRETCHED, [1.5, 0.0], noise, sigma=sigma, eta=0.05)
    np.testing.assert_allclose(pred.drift_leading, [expected, 0], rtol=1e-12, atol=1e-30)


def test_points_off_the_manifold_are_projected_and_far_points_refused():
    theta, moved = project(FIG5A, [1.0, 0.05])
    assert abs(theta[0] * theta[1]) < 1e-12 and 0 < moved < 0.06
    pred = predict(FIG5A, [1.0, 0.05], "update", sigma=0.01, eta=0.05)
    assert pred.projected_from == [1.0, 0.05] and "projected onto it" in pred.warnings[0]
    with pytest.raises(UserError, match="far from any zero-loss manifold"):
        predict(Problem.from_expr("x**2 + (y - 1)**2 + 1"), [3.0, 0.0], "update", sigma=0.01, eta=0.05)


def test_curved_manifold_tangent_space():
    ring = Problem.from_residuals("x**2 + y**2 - 1")
    pred = predict(ring, [0.6, 0.8], "update", sigma=0.01, eta=0.05)
    t = np.array(pred.tangent_basis[0])
    assert abs(t @ [0.6, 0.8]) < 1e-12 and pred.rank == 1
    # by symmetry nothing on the circle is preferred: no drift along it
    assert abs(np.array(pred.drift_leading) @ t) < 1e-15


def test_regime_warnings_edge_of_stability_and_degenerate_points():
    near_two = predict(FIG5A, [1.0, 0.0], "label", sigma=0.01, eta=0.85)  # ηλ = 1.7
    assert any("near 2" in w for w in near_two.warnings)
    unstable = predict(FIG5A, [1.0, 0.0], "label", sigma=0.01, eta=1.1)  # ηλ = 2.2
    assert any(w.startswith("unstable") for w in unstable.warnings)
    leading_off = predict(FIG5A, [1.0, 0.0], "label", sigma=0.01, eta=0.2)  # ηλ = 0.4
    assert any("leading-order drift is off" in w for w in leading_off.warnings)
    calm = predict(FIG5A, [1.0, 0.0], "update", sigma=0.01, eta=0.05)
    assert calm.warnings == []
    # close to the degenerate point x = 0 the normal fluctuations reach the distance to it
    near_degenerate = predict(FIG5A, [0.05, 0.0], "update", sigma=0.01, eta=0.05)
    assert any("near a degenerate point" in w for w in near_degenerate.warnings)
    # at it, the rank drops and the update-noise drift is infinite: a UserError, not a number
    with pytest.raises(UserError, match="not finite"):
        predict(FIG5A, [0.0, 0.0], "update", sigma=0.01, eta=0.05)
    label_at_zero = predict(FIG5A, [0.0, 0.0], "label", sigma=0.01, eta=0.05)
    assert any("rank drop" in w for w in label_at_zero.warnings)


def test_degenerate_warning_counts_where_a_planned_run_goes():
    """At x = 0.5 on (xy)² (λ = 2x², degenerate at x = 0) the point itself is calm at σ = 0.005 (2S/d² = 0.4%),
    but 3500 steps of update noise spread the chains 2·σ√3500 ≈ 0.59 ≥ 0.5: the warning must say so; a short
    horizon keeps a finite error estimate that grows with the horizon."""
    here = predict(FIG5A, [0.5, 0.0], "update", sigma=0.005, eta=0.05)
    assert not any("degenerate" in w for w in here.warnings)
    far = predict(FIG5A, [0.5, 0.0], "update", sigma=0.005, eta=0.05, horizon=3500)
    assert any("will reach it" in w for w in far.warnings), far.warnings
    short = predict(FIG5A, [0.5, 0.0], "update", sigma=0.005, eta=0.05, horizon=300)
    longer = predict(FIG5A, [0.5, 0.0], "update", sigma=0.005, eta=0.05, horizon=600)
    rel = lambda p: [float(w.split("≈ ", 1)[1].split()[0]) for w in p.warnings if "relative error" in w]  # noqa: E731
    assert rel(short) == [] or rel(short)[0] < rel(longer)[0]
    assert rel(longer), longer.warnings


def test_the_next_order_near_a_degenerate_point_on_its_local_form():
    """On L = ½c s²n² (Γ: n = 0, eigenvalue cs² vanishing at s = 0, d = s) gradient flow conserves s² − n², so
    Φ = r = √(s² − n²). One GD step with noise of covariance diag(C_ss, C_nn): the mean step's terms cancel in
    ∂r exactly, and E Δr = ½ tr(∇²r C) = −C_nn/(2r)·(1 + (1 + C_ss/C_nn)·n²/r²) at the chain's projected point r:
    averaged over n² = S the coefficient of S/d² is 1 + C_ss/C_nn (2 for isotropic update noise)."""
    import sympy as sp

    s, n, r, c, eta, css, cnn = sp.symbols("s n r c eta C_ss C_nn", positive=True)
    R = sp.sqrt(s**2 - n**2)
    step = sp.Matrix([-eta * c * s * n**2, -eta * c * s**2 * n])              # −η∇L
    grad = sp.Matrix([R.diff(s), R.diff(n)])
    hess = sp.hessian(R, (s, n))
    assert sp.simplify((grad.T * step)[0]) == 0
    mean = sp.Rational(1, 2) * (hess[0, 0] * css + hess[1, 1] * cnn)
    claimed = -cnn / (2 * r) * (1 + (1 + css / cnn) * n**2 / r**2)
    assert sp.simplify(mean.subs(s, sp.sqrt(r**2 + n**2)) - claimed) == 0


def test_the_degenerate_point_estimate_is_the_exact_next_order_of_its_local_form():
    """An outside audit's simulation of (xy)² at x = 1 (σ = 0.009, η = 0.0005, S = 0.0405) measured the
    gradient-flow projected drift 1.20× the leading order along the chains' trajectories, with no warning:
    the estimate S/d² = 4% sat under its 5% bar (the rest of the 20% is the chains' spread toward x = 0 over
    the run). On the local form the next order is (1 + C_tt/C_nn)·S/d² (above): 2S/d² for update noise, 8.1%
    here; the warning says so and speaks from 1%."""
    pred = predict(FIG5A, [1.0, 0.0], "update", sigma=0.009, eta=0.0005)
    est = [float(w.split("≈ ", 1)[1].split()[0]) for w in pred.warnings if "relative error" in w]
    S = 0.009**2 / (0.0005 * (2 * 2.0 - 0.0005 * 2.0**2))            # stationary normal variance, λ = 2
    assert est and abs(est[0] - 2 * S) < 1e-2 * est[0], pred.warnings   # printed to 2 digits


def test_bad_numbers_are_user_errors():
    with pytest.raises(UserError, match="step size"):
        predict(FIG5A, [1.0, 0.0], "update", sigma=0.01, eta=0.0)
    with pytest.raises(UserError, match="sigma"):
        predict(FIG5A, [1.0, 0.0], "update", sigma=float("nan"), eta=0.05)


def test_the_rank_is_read_where_the_chains_are_on_a_gamma_with_pieces_of_two_codimensions():
    """Γ of r = (xy, xz) is the plane x = 0 (rank 1) and the line y = z = 0 (rank 2). The check's compiled
    prediction read its rank from random starts, which land on the plane: at (1, 0, 0) it halved the drift;
    and (0, 1, 1), a regular point of the plane, was refused as a rank drop."""
    from flatland.theory import compile_prediction
    from named_laws import hyper, law

    problem = Problem.from_residuals("x*y, x*z")
    on_line = predict(problem, [1.0, 0.0, 0.0], "update", sigma=0.01, eta=0.05)
    assert on_line.rank == 2
    f = compile_prediction(problem, law("update"), at=(1.0, 0.0, 0.0))
    compiled = np.asarray(f(np.array([1.0, 0.0, 0.0]), hyper("update", 0.01, 0.05))["drift_finite_eta"])
    np.testing.assert_allclose(compiled, on_line.drift_finite_eta, rtol=1e-10)
    on_plane = predict(problem, [0.0, 1.0, 1.0], "update", sigma=0.01, eta=0.05)
    assert on_plane.rank == 1 and not any("degenerate" in w for w in on_plane.warnings)
    assert on_plane.drift_finite_eta[1] < 0
    # y² + (xy)² = y²(1 + x²): Γ is the x-axis, rank 1 everywhere; its residuals (y, xy) have rank 2 off Γ,
    # which made the origin a "rank drop" with an infinite drift
    axis = predict(Problem.from_expr("y**2 + (x*y)**2"), [0.0, 0.0], "update", sigma=0.01, eta=0.05)
    assert axis.rank == 1 and not any("degenerate" in w for w in axis.warnings)


def test_a_loss_that_rounds_to_zero_near_gamma_is_not_a_rank_drop():
    """log(1 + u²) is 0 in floating point for |u| < 1e-8: projection stopped there, the off-Γ curvature
    2u∇²u gave the neighbours a second eigenvalue, and the circle was called degenerate at every point."""
    pred = predict(Problem.from_expr("log(1+(x**2+y**2-1)**2)"), [0.6, 0.8], "update", sigma=0.01, eta=0.05)
    assert pred.rank == 1
    assert not any("degenerate" in w or "disagree" in w for w in pred.warnings), pred.warnings
    np.testing.assert_allclose(pred.drift_normal, [-3e-5, -4e-5], rtol=1e-6)    # −(σ²/2)θ per step


def test_a_drift_that_cancels_to_round_off_is_zero_and_says_so():
    """Label noise on a circle: tr H is constant on Γ, the rule's terms cancel to ~1e-22. That was compared
    as a nonzero prediction (ratios of 1e5, "general rule and closed form disagree")."""
    pred = predict(Problem.from_residuals("x**2 + y**2 - 1"), [0.6, 0.8], "label", sigma=0.01, eta=0.05)
    assert pred.drift_scale > 0 and pred.is_zero(pred.drift_finite_eta) and pred.is_zero(pred.drift_normal)
    assert any("zero to round-off" in w for w in pred.warnings)
    assert not any("disagree" in w for w in pred.warnings), pred.warnings
    real = predict(Problem.from_residuals("x*y - 1"), [2.0, 0.5], "label", sigma=0.01, eta=0.05)
    assert not real.is_zero(real.drift_finite_eta) and not any("round-off" in w for w in real.warnings)


def test_a_valley_flat_to_second_order_across_gamma_is_one_clear_line():
    """(xy − 1)⁴: H vanishes everywhere on Γ; the message asked for a point 'where H has its generic rank'."""
    with pytest.raises(UserError, match="H vanishes on Γ at and around this point"):
        predict(Problem.from_expr("(x*y-1)**4"), [2.0, 0.5], "update", sigma=0.01, eta=0.05)
    label_at_crossing = predict(FIG5A, [0.0, 0.0], "label", sigma=0.01, eta=0.05)   # a crossing is still a rank drop
    assert any("rank drop" in w for w in label_at_crossing.warnings)


def test_a_learner_whose_own_moments_do_not_hold_here_is_measured_by_raw_displacement():
    """SED's quadrature moments need ≤ 4 parameters: at 5 the check ended in an internal error (exit 70)."""
    import jax.numpy as jnp
    from flatland import Loss
    from flatland.estimators import missing_moments
    from named_laws import registry

    loss = Loss("five", residuals=lambda t: jnp.stack([t[0] * t[1] - 1, t[2], t[3], t[4]]))
    sed, none = registry().create("learners", "sed"), registry().create("noise", "none")
    why = missing_moments(loss, none, sed, jnp.array([2.0, 0.5, 0.0, 0.0, 0.0]))
    assert why is not None and "cannot state its own moments" in why and "≤ 4 parameters" in why
    four = Loss("four", residuals=lambda t: jnp.stack([t[0] * t[1] - 1, t[2], t[3]]))
    assert missing_moments(four, none, sed, jnp.array([2.0, 0.5, 0.0, 0.0])) is None


def test_minibatch_noise_that_grows_off_gamma_adds_to_the_update_noise_drift_at_finite_eta():
    """Minibatch noise is 0 on Γ, so update + minibatch was predicted as update alone; an independent
    simulation measured 6.9% more drift at η = 0.08. Its declared growth off Γ now enters at finite η
    (the simulation side: the slow test in test_checks_cli.py)."""
    from flatland import compose_noise, step_law
    from flatland.theory import predict as predict_law
    from named_laws import registry

    reg = registry()
    both, why = step_law(compose_noise([reg.create("noise", "update"), reg.create("noise", "minibatch")]),
                         reg.create("learners", "gd"))
    assert both is not None, why
    problem = Problem.from_residuals("x*y - 1, z", kappa=1)
    point = [2.0, 0.5, 0.0]
    composed = predict_law(problem, point, both, hyper={"learner": {"lr": 0.08}, "noise": {"update.sigma": 0.01}})
    alone = predict(problem, point, "update", sigma=0.01, eta=0.08)
    np.testing.assert_allclose(composed.drift_leading, alone.drift_leading, rtol=1e-12)   # leading order: C alone
    ratio = np.asarray(composed.drift_finite_eta[:2]) / np.asarray(alone.drift_finite_eta[:2])   # z: 0 in both
    assert 1.03 < ratio[0] < 1.10 and ratio[0] == pytest.approx(ratio[1], rel=1e-9)
    assert any("gradient_covariance" in w for w in composed.warnings)              # no finite-η closed form


def test_without_noise_no_leading_order_warning_is_given_for_a_drift_that_is_exactly_zero():
    quiet = predict(FIG5A, [1.0, 0.0], "none", sigma=0.0, eta=0.4)           # ηλ = 0.8, C = 0
    assert quiet.drift_leading == quiet.drift_finite_eta and not any("leading-order" in w for w in quiet.warnings)
    noisy = predict(FIG5A, [1.0, 0.0], "update", sigma=0.01, eta=0.4)
    assert any("leading-order" in w for w in noisy.warnings)
    assert any(w.startswith("unstable") for w in predict(FIG5A, [1.0, 0.0], "none", sigma=0.0, eta=1.1).warnings)


def test_an_observable_with_a_kink_at_the_point_is_said_to_be_outside_the_ito_rule():
    """|x − 2| at x = 2 was predicted to drift by exactly 0 with no word of its kink."""
    hyper = dict(sigma=0.01, eta=0.05)
    at_kink = predict(Problem.from_residuals("x*y - 1"), [2.0, 0.5], "update", observable="Abs(x-2)", **hyper)
    assert any("observable is not smooth here" in w for w in at_kink.warnings)
    away = predict(Problem.from_residuals("x*y - 1"), [2.0, 0.5], "update", observable="Abs(x-3)", **hyper)
    assert not any("not smooth" in w for w in away.warnings)
    relu = predict(Problem.from_residuals("x*y - 1"), [2.0, 0.5], "update", observable="relu(y-0.5)", **hyper)
    assert any("kink of the observable" in w for w in relu.warnings)


def test_a_covariance_whose_coefficient_varies_along_gamma_has_a_closed_drift_but_no_regularizer():
    """C = σ²|θ|²I is a·I with a varying along Γ: the drift −(a/4)P_T∇log pdet H stays exact (the rule is
    local), but it is not −P_T∇Φ of the printed Φ = (a/4) log pdet H, whose x-derivative adds
    (∂ₓa/4)·log pdet H — a third-party plugin audit found that regularizer printed without a word."""
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from flatland import NoiseModel, step_law
    from flatland.theory import predict as predict_law
    from named_laws import registry

    class Radial(NoiseModel):
        name, hyper = "radial-norm", {"sigma": 0.005}

        def perturb_params(self, key, p, h):
            import jax
            flat, back = ravel_pytree(p)
            return back(flat + h["sigma"] * jnp.linalg.norm(flat) * jax.random.normal(key, flat.shape))

        def param_cov(self, p, h):
            flat = ravel_pytree(p)[0]
            return h["sigma"] ** 2 * (flat @ flat) * jnp.eye(flat.shape[0])

        def covariance(self, ctx):
            return ctx.hyper["sigma"] ** 2 * (ctx.theta.T @ ctx.theta)[0, 0] * ctx.eye \
                if ctx.backend == "sympy" else ctx.hyper["sigma"] ** 2 * float(ctx.theta @ ctx.theta) * ctx.eye

    law, why = step_law(Radial(), registry().create("learners", "gd"))
    assert law is not None, why
    pred = predict_law(FIG5A, [1.5, 0.0], law, hyper={"learner": {"lr": 0.05}, "noise": {"sigma": 0.005}})
    assert pred.regularizer.startswith("(none: the noise's part has no potential") and "vary with x, y" in \
        pred.regularizer and not pred.potential
    # by hand: H = diag(0, 2x²) on y = 0, ∇log pdet H = (2/x, 0), a = σ²x²: drift_x = −(σ²x²/4)(2/x) = −σ²x/2
    assert pred.drift_leading[0] == pytest.approx(-0.005 ** 2 * 1.5 / 2, rel=1e-9)
    np.testing.assert_allclose(pred.drift_closed_form_leading, pred.drift_leading, rtol=1e-9, atol=1e-300)
    # the control: a coefficient constant along Γ keeps its regularizer
    assert predict(FIG5A, [1.5, 0.0], "update", sigma=0.005, eta=0.05).regularizer.startswith("σ**2")


@pytest.mark.parametrize("noise", ["update", "gradient", "label", "uniform-label", "sed"])
@pytest.mark.parametrize("expr, point", [("(x*y)**2", [1.3, 0.0]), ("0.5*(1+x**2)**2*y**2", [0.7, 0.0]),
                                         ("(x*y - 1)**2", [2.0, 0.5]), ("(y*z)**2 + (y*(3 - x))**2", [1.0, 0.0, 0.0])])
def test_the_printed_regularizer_is_the_potential_of_the_printed_drift(noise, expr, point):
    """−P_T∇Φ of the regularizer `theory` prints is its drift, at leading order and finite η (rtol 1e-9): a
    mutation audit doubled the label-noise Φ's coefficient and no test noticed (the drift itself comes from
    another code path)."""
    import sympy as sp

    from flatland.theory._closed import hyper_symbols, hyper_values, regularizer
    from named_laws import hyper as named_hyper, law

    problem = Problem.from_expr(expr)
    h = named_hyper(noise, 0.01, 0.05)
    pred = predict(problem, point, noise, sigma=0.01, eta=0.05)
    T = np.asarray(pred.tangent_basis, float).reshape(-1, problem.dim)
    P_T = T.T @ T
    values = dict(zip([s for _, _, s in hyper_symbols(law(noise))], hyper_values(hyper_symbols(law(noise)),
                                                                                  pred.hyper)))
    at = dict(zip(problem.symbols, pred.point)) | values
    if not pred.closed_form:   # SED's probe covariance on a rank-2 valley is not a·I + b·H
        assert pred.regularizer == "(no closed form: general rule only)" and not pred.potential
        return
    if not pred.potential:   # SED's probe covariance is a·I + b·H with a, b ∝ x⁴σ⁶…: only its U part is a Φ
        assert pred.regularizer.startswith("η*σ**4*(") and "the noise's part has no potential" in pred.regularizer
        return
    for finite, drift in ((False, pred.drift_leading), (True, pred.drift_finite_eta)):
        if finite and "general rule only" in pred.regularizer_finite_eta:
            continue
        phi = regularizer(problem, law(noise), pred.rank, finite)
        grad = np.array([float(sp.diff(phi, s).subs(at)) for s in problem.symbols])
        np.testing.assert_allclose(-P_T @ grad, drift, rtol=1e-9, atol=1e-12 * max(np.abs(drift).max(), 1e-300))
    assert h  # the named hyperparameters reached the prediction


@pytest.mark.parametrize("covariance, says", [
    (lambda ctx: ctx.hyper["sigma"] ** 2 * np.eye(2), r"covariance\(ctx\) has shape \(2, 2\), not \(3, 3\)"),
    (lambda ctx: ctx.hyper["sigma"] ** 2 * (ctx.eye + ctx.outer([1.0, 0.0, 0.0], [0.0, 1.0, 0.0])),
     "not symmetric"),
    (lambda ctx: ctx.hyper["sigma"] ** 2 * (ctx.eye - 2 * ctx.outer([1.0, 0.0, 0.0])), "not positive semi-definite"),
])
def test_a_declared_covariance_of_the_wrong_shape_or_not_symmetric_psd_is_the_plugins_error(covariance, says):
    """A 2 × 2 covariance on 3 parameters was flatland's 'internal error (a bug)'; an asymmetric one gave a
    prediction with exit 0 (only the kit caught it)."""
    import types

    from flatland.errors import PluginError
    from flatland.theory import StepLaw

    noise = types.SimpleNamespace(covariance=covariance, hyper={"sigma": 0.01})
    law = StepLaw(noise=noise, name="bad")
    with pytest.raises(PluginError, match=says):
        flatland.theory.predict(Problem.from_residuals("x*y*z - 1"), [2.0, 0.5, 1.0], law)


def test_a_warning_is_given_once_when_two_eigenvalues_raise_it():
    """r = (xy, xz) at (0.001, 0, 0): H has the eigenvalue x² twice, and the degenerate-point warning was printed
    twice, word for word."""
    pred = predict(Problem.from_residuals("x*y, x*z"), [0.001, 0.0, 0.0], "update", sigma=0.01, eta=0.05)
    near = [w for w in pred.warnings if w.startswith("near a degenerate point")]
    assert len(near) == 1 and len(pred.warnings) == len(set(pred.warnings))


def test_a_learner_whose_effective_step_is_not_one_number_is_a_plugin_error_naming_it():
    """A LearnerTheory.lr returning a vector (a per-coordinate preconditioner) was a user error (exit 2) naming
    neither the learner nor its declaration; it is the plugin's contract, so a PluginError (exit 3) says whose."""
    from flatland import Learner, LearnerTheory
    from flatland.errors import PluginError
    from flatland.laws import step_law
    from flatland.theory import predict as theory_predict
    from named_laws import law

    vector = LearnerTheory(lr=lambda h: np.array([h["lr"], 2 * h["lr"]]))
    learner = Learner("precond", lambda p, h: (), lambda k, p, s, h, o: (p, s, {}), {"lr": 0.1}, theory=vector)
    bad, _ = step_law(law("update").noise, learner)
    with pytest.raises(PluginError, match="learner 'precond': LearnerTheory.lr must return one number"):
        theory_predict(Problem.from_expr("(x*y)**2"), [1.0, 0.0], bad)
    negative, _ = step_law(law("update").noise, Learner("neg", learner.init, learner.step, {"lr": -0.1},
                                                       theory=LearnerTheory(lr=lambda h: h["lr"])))
    with pytest.raises(UserError, match="learner 'neg''s effective step size must be a finite positive number"):
        theory_predict(Problem.from_expr("(x*y)**2"), [1.0, 0.0], negative)
