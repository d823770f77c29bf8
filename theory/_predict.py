"""``predict``: everything the theory says at one point of Γ, with its regime warnings.

The drift comes from the general rule applied to what the components declare
(the same compiled function that simulations compare against) and is
cross-checked against the closed form where the declared covariance has one
(``_closed``); a disagreement becomes a warning, a non-finite drift (a
degenerate point) a UserError.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np
import sympy as sp

from flatland.errors import PluginError, UserError

from . import _closed
from . import _symbolic as S
from ._closed import hyper_symbols, hyper_values
from ._compile import (build, check_law, check_symmetric_psd, curvature_function, observable_functions,
                       total_covariance)
from ._declare import CovarianceContext, StepLaw
from ._lambdify import numpy_function
from ._manifold import local_rank, on_manifold, project as project_point, rank_and_basis
from ._problem import Problem, parse_point
from ._warnings import regime_warnings


@dataclasses.dataclass
class Prediction:
    """The theory's statement at one point of Γ (drifts are per step, in variable order)."""

    variables: list
    point: list
    projected_from: Optional[list]
    noise: str
    eta: float
    hyper: dict
    kappa: Optional[float]
    loss: str
    residuals: Optional[list]
    hessian: list
    eigenvalues: list
    rank: int
    tangent_basis: list
    regularizer: str
    regularizer_finite_eta: str
    regularizer_latex: str
    regularizer_finite_eta_latex: str
    drift_leading: list
    drift_finite_eta: list
    drift_closed_form_leading: list
    drift_closed_form_finite_eta: list
    eta_lambda_max: float
    warnings: list
    closed_form: bool = True
    drift_normal: Optional[list] = None
    observable: Optional[str] = None
    observable_drift_leading: Optional[float] = None
    observable_drift_finite_eta: Optional[float] = None
    observable_drift_without_ito: Optional[float] = None
    observable_drift_without_ito_finite_eta: Optional[float] = None
    observable_ito_term: Optional[float] = None
    observable_scale: float = 0.0  # the size of the observable rule's terms, |∇c|·drift_scale + |∇²c|·|C|
    drift_scale: float = 0.0
    potential: bool = True   # the drift is −P_T∇ of the regularizer shown (False: its noise part is no gradient)

    def is_zero(self, drift) -> bool:
        """Whether a predicted drift (a vector near this point) is 0 up to round-off: exactly 0, or every
        component ≤ ``ROUNDOFF`` × ``drift_scale``, the size of the rule's terms that cancel in it."""
        d = np.abs(np.asarray(drift, float))
        return not np.any(d) or bool(np.max(d) <= ROUNDOFF * self.drift_scale)

    def observable_is_zero(self, value: float) -> bool:
        """Whether a predicted E[Δc] is 0 up to round-off (as :meth:`is_zero`, on ``observable_scale``): an
        observable constant on Γ under a noise without tangent diffusion (xy on xy = 1 under label noise)."""
        return value == 0 or abs(value) <= ROUNDOFF * self.observable_scale

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


#: a drift whose every component is below this fraction of ``drift_scale`` is zero up to round-off
ROUNDOFF = 1e-9


def drift_scale(m: int, lam, C, dH) -> float:
    """The size of one term of the drift rule, ‖∇³L‖·‖C‖/λ_min (largest entries; λ_min the smallest
    nonzero eigenvalue of H): where the terms cancel (a drift that is zero by symmetry, as label noise
    on a circle), what remains is round-off of this size, not a drift. 0 without noise or normals."""
    if not m or not np.any(C):
        return 0.0
    return float(np.max(np.abs(dH)) * np.max(np.abs(C)) / np.asarray(lam)[len(lam) - m])


def _number(name, value, positive=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise UserError(f"{name} must be a finite {'positive ' if positive else ''}number, got {value}")
    return value


def _hyper(law: StepLaw, hyper) -> dict:
    try:
        h = law.resolve(hyper)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    h = {part: {k: _number(f"{part} hyperparameter {k}", v) for k, v in vals.items()} for part, vals in h.items()}
    lr = law.learner.lr(h["learner"])
    who = f"learner {law.learner_name!r}" if law.learner_name else "the learner"
    if isinstance(lr, (str, bytes, bool)) or np.ndim(lr) != 0:
        raise PluginError(f"{who}: LearnerTheory.lr must return one number, the effective step size, got {lr!r}")
    _number(f"{who}'s effective step size", lr, positive=True)
    return h


def _closed_form(problem, law, m, theta, P_T, hyper):
    f = _closed.drift_gradient_function(problem, law, m)
    with np.errstate(all="ignore"):  # a non-finite drift is refused by the caller, in one line
        lead, fin = f(theta, *hyper_values(hyper_symbols(law), hyper))
        return P_T @ lead + 0.0, P_T @ fin + 0.0


def loss_derivative(problem: Problem, theta, order: int) -> np.ndarray:
    """∇ᵏL at θ, (d, …, d), by automatic differentiation of the loss (asked for by regime hooks only)."""
    import jax

    from ._lambdify import jax_function

    f = lambda t: jax_function(problem, "loss")(t).reshape(())  # noqa: E731
    for _ in range(int(order)):
        f = jax.jacfwd(f)
    return np.asarray(f(np.asarray(theta, np.float64)), float)


def _text(expr, problem, theta):
    expr = S.specialize(expr, problem.symbols, theta) if expr.has(sp.Max, sp.Heaviside) else expr
    names = {_closed.ETA: r"\eta", _closed.SIGMA: r"\sigma"}
    return str(expr), sp.latex(expr, symbol_names=names)


def _require_minimum(problem: Problem, theta) -> None:
    """Γ = {L = 0} must be a set of minima: a loss that crosses 0 there (x·y − 1, not its square) has a
    nonzero gradient on its zero set, and every formula here would be about a saddle."""
    g = np.asarray(numpy_function(problem, "gradient")(theta), float)
    scale = 1.0 + float(np.max(np.abs(theta)))
    if np.all(np.isfinite(g)) and float(np.max(np.abs(g))) > 1e-6 * scale:
        raise UserError(f"the loss's gradient does not vanish where it is 0 (|∇L| = {np.max(np.abs(g)):.3g} at "
                        f"{np.round(theta, 6).tolist()}): Γ = {{L = 0}} must be minima, L ≥ 0 near it — write the "
                        f"loss as a sum of squares (({problem.loss_expr})**2), or give the expression as --residuals")


def predict(problem: Problem, point, law: StepLaw, *, hyper=None, observable: Optional[str] = None,
            project: bool = True, horizon: int = 0) -> Prediction:
    """Hessian, tangent space, regularizer and per-step drift at ``point`` (projected onto Γ).

    ``law`` says what the learner and the noise model declare; ``hyper``
    overrides their default hyperparameters, as ``{"learner": {...}, "noise": {...}}``.
    ``horizon`` (steps a simulation will run from here) makes the degenerate-point
    warning count the distance the chains' tangent diffusion and drift cover meanwhile.
    """
    check_law(problem, law)
    hyper = _hyper(law, hyper)
    eta = float(law.learner.lr(hyper["learner"]))
    theta0 = np.asarray(parse_point(point, problem.variables), float)
    warnings = []
    if project:
        theta, moved = project_point(problem, theta0)
        if moved > 0:
            warnings.append(f"the point was not on Γ: projected onto it (moved by {moved:.3g})")
    else:
        theta = theta0
        if not on_manifold(problem, theta):
            warnings.append("the point is not on Γ and was not projected: the formulas assume a point on Γ")

    if not problem.has_residuals:
        _require_minimum(problem, theta)
    curv, dH, J = curvature_function(problem, "numpy")(theta)
    # on Γ the Gauss–Newton matrix is the Hessian; off Γ (project=False) report ∇²L itself
    H = curv if on_manifold(problem, theta) else np.asarray(numpy_function(problem, "hessian")(theta))
    m, lam, U_n, U_t = rank_and_basis(curv)
    m_local = local_rank(problem, theta) if on_manifold(problem, theta) else m
    if m_local == 0 and on_manifold(problem, theta):
        raise UserError("H vanishes on Γ at and around this point (rank 0): the valley is flat to second order "
                        "across Γ, and the drift rule (second order in the noise, through H) has nothing to say — "
                        "noisy steps still move there. A residual raised to a power above 1 (write the loss with "
                        "the residual itself), or a loss with a kink on Γ (Abs: not twice differentiable there)")
    f = build(problem, law, observable, m, "numpy")
    with np.errstate(all="ignore"):
        out = {k: np.asarray(v, float) + 0.0 for k, v in f(theta, hyper).items()}
    P_T = np.eye(problem.dim) - U_n @ U_n.T
    for label in ("leading", "finite_eta"):
        if not np.all(np.isfinite(out[f"drift_{label}"])):
            raise UserError(f"the predicted {label.replace('_eta', '-η')} drift under {law.name} noise is not finite "
                            "at this point (a degenerate point of Γ, or ηλ = 2): choose a point where H has its "
                            "generic rank")

    kappa = float(problem.kappa) if problem.kappa is not None else 0.5
    ctx = dict(H=curv, eye=np.eye(problem.dim), eta=eta, kappa=kappa, J=J, theta=theta, dH=dH)
    C = np.asarray(total_covariance(law, CovarianceContext(hyper=hyper["noise"], **ctx),
                                    CovarianceContext(hyper=hyper["learner"], **ctx)), float)
    check_symmetric_psd(law, C)
    scale = drift_scale(m, lam, C, dH)
    drift = np.concatenate([out["drift_finite_eta"], out["drift_normal"]])
    if scale > 0 and np.any(drift) and np.max(np.abs(drift)) <= ROUNDOFF * scale:
        warnings.append(f"the drift is zero to round-off here (every component ≤ {ROUNDOFF:g} × the size "
                        f"{scale:.3g} of the rule's terms, which cancel)")

    # the closed form at the generic rank: at a rank drop (a degenerate point) it tells whether
    # the drift is finite there at all
    cf = _closed.closed_form(problem, law)
    if not cf.complete:
        warnings.append(cf.note + "; the general rule alone predicts")
        closed_lead, closed_fin = np.full(problem.dim, np.nan), np.full(problem.dim, np.nan)
    else:
        m_closed = max(m, m_local)
        closed_lead, closed_fin = _closed_form(problem, law, m_closed, theta, P_T, hyper)
        if not cf.finite_eta:
            warnings.append(cf.note)
            closed_fin = np.full(problem.dim, np.nan)
        for label, general, closed in (("leading", out["drift_leading"], closed_lead),
                                       ("finite-η", out["drift_finite_eta"], closed_fin)):
            if label == "finite-η" and not cf.finite_eta:
                continue
            if not np.all(np.isfinite(closed)):
                where = (f"a degenerate point of Γ (H has rank {m} here, {m_closed} on Γ around it)" if m < m_closed
                         else "a degenerate point of Γ, or ηλ = 2")
                raise UserError(f"the predicted {label} drift under {law.name} noise is not finite at this point "
                                f"({where}): choose a point where H has its generic rank")
            gap = np.max(np.abs(general - closed))
            if m == m_closed and gap > 1e-6 * max(np.max(np.abs(closed)), np.max(np.abs(general)), 1e-300) \
                    and gap > ROUNDOFF * scale:  # two round-off values of a zero drift do not disagree
                warnings.append(f"general rule and closed form disagree ({label}): {general.tolist()} vs "
                                f"{closed.tolist()}")

    # regime warnings need S (normal fluctuations) and the derivatives of H
    warnings += regime_warnings(problem, theta, law.learner.finite_eta, eta, m, lam, U_n, C, dH,
                                drift=out["drift_finite_eta"], horizon=int(horizon), m_local=m_local,
                                observable=observable)
    if law.learner.regime is not None:
        warnings += [str(w) for w in law.learner.regime(CovarianceContext(
            hyper=hyper["learner"], derivative=lambda k: loss_derivative(problem, theta, k), **ctx))]

    if cf.complete and cf.varying:   # the learner's potential, if any, and why the rest is no gradient
        why = _closed.no_potential_text(cf)
        U = _closed.potential_part(cf)
        if U == 0:
            r_txt = r_tex = f"(none: {why})"
        else:
            (u_txt, u_tex) = _text(U, problem, theta)
            r_txt, r_tex = f"{u_txt} + ({why})", rf"{u_tex} + (\text{{{why}}})"
        re_txt = re_tex = "(see the leading-order line: no potential in full)"
    elif cf.complete:
        R = _closed.regularizer(problem, law, m, False)
        (r_txt, r_tex) = _text(R, problem, theta)
        if cf.finite_eta:
            (re_txt, re_tex) = _text(_closed.regularizer(problem, law, m, True), problem, theta)
        else:
            re_txt = re_tex = "(no finite-η closed form: general rule only)"
    else:
        r_txt = re_txt = r_tex = re_tex = "(no closed form: general rule only)"
    lam_max = float(lam[-1]) if lam.size else 0.0
    pred = Prediction(
        variables=list(problem.variables), point=theta.tolist(),
        projected_from=None if np.array_equal(theta, theta0) else theta0.tolist(),
        noise=law.name, eta=eta, hyper=hyper, kappa=None if problem.kappa is None else float(problem.kappa),
        loss=str(problem.loss_expr),
        residuals=None if problem.residual_exprs is None else [str(r) for r in problem.residual_exprs],
        hessian=H.tolist(), eigenvalues=lam.tolist(), rank=m, tangent_basis=U_t.T.tolist(),
        regularizer=r_txt, regularizer_finite_eta=re_txt, regularizer_latex=r_tex,
        regularizer_finite_eta_latex=re_tex,
        drift_leading=out["drift_leading"].tolist(), drift_finite_eta=out["drift_finite_eta"].tolist(),
        drift_closed_form_leading=closed_lead.tolist(), drift_closed_form_finite_eta=closed_fin.tolist(),
        eta_lambda_max=eta * lam_max, warnings=list(dict.fromkeys(warnings)), closed_form=cf.complete,
        drift_normal=out["drift_normal"].tolist(), drift_scale=scale, potential=bool(cf.complete and not cf.varying),
    )
    if observable is not None:
        vals = {k: float(out[k]) for k in ("observable_leading", "observable_finite_eta", "observable_without_ito",
                                           "observable_without_ito_finite_eta", "observable_ito")}
        if not all(math.isfinite(v) for v in vals.values()):
            raise UserError(f"the observable {observable!r} has a non-finite predicted drift at this point")
        pred.observable = observable
        pred.observable_drift_leading = vals["observable_leading"]
        pred.observable_drift_finite_eta = vals["observable_finite_eta"]
        pred.observable_drift_without_ito = vals["observable_without_ito"]
        pred.observable_drift_without_ito_finite_eta = vals["observable_without_ito_finite_eta"]
        pred.observable_ito_term = vals["observable_ito"]
        grad_c, hess_c = (np.asarray(g(theta), float) for g in observable_functions(problem, observable, "numpy"))
        pred.observable_scale = float(np.max(np.abs(grad_c)) * scale + np.max(np.abs(hess_c)) * np.max(np.abs(C)))
    return pred
