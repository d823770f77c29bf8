"""``predict``: everything the theory says at one point of Γ, with its regime warnings.

The drift comes from the general rule (the same compiled JAX function that
simulations compare against) and is cross-checked against the closed form of
THEORY.md's table (−coef · P_T ∇R, from SymPy); a disagreement becomes a
warning, a non-finite closed form (a degenerate point) a UserError.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np
import sympy as sp

from flatland.contracts import CovarianceContext
from flatland.errors import UserError

from . import _closed
from . import _symbolic as S
from . import covariance as cov
from ._compile import build, check_noise, curvature_function
from ._lambdify import numpy_function
from ._manifold import on_manifold, project as project_point, rank_and_basis
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
    sigma: float
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
    observable: Optional[str] = None
    observable_drift_leading: Optional[float] = None
    observable_drift_finite_eta: Optional[float] = None
    observable_drift_without_ito: Optional[float] = None
    observable_drift_without_ito_finite_eta: Optional[float] = None
    observable_ito_term: Optional[float] = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _number(name, value, positive=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise UserError(f"{name} must be a finite {'positive' if positive else 'non-negative'} number, got {value}")
    return value


def _closed_form(problem, noise, m, theta, P_T, eta, sigma):
    f = _closed.drift_gradient_function(problem, noise, m)
    with np.errstate(all="ignore"):
        lead, fin = f(theta, eta, sigma)
    return P_T @ lead + 0.0, P_T @ fin + 0.0


def _text(expr, problem, theta):
    expr = S.specialize(expr, problem.symbols, theta) if expr.has(sp.Max, sp.Heaviside) else expr
    names = {_closed.ETA: r"\eta", _closed.SIGMA: r"\sigma"}
    return str(expr), sp.latex(expr, symbol_names=names)


def predict(problem: Problem, point, noise: str, *, sigma, eta, observable: Optional[str] = None,
            project: bool = True) -> Prediction:
    """Hessian, tangent space, regularizer and per-step drift at ``point`` (projected onto Γ).

    ``sigma`` is the noise scale (σ; σ_g for gradient noise; the width w for
    uniform-label; the probe std s for sed, whose μ is ``eta``).
    """
    check_noise(problem, noise)
    sigma, eta = _number("sigma", sigma), _number("eta", eta, positive=True)
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

    curv, dH, J = curvature_function(problem, "numpy")(theta)
    # on Γ the Gauss–Newton matrix is the Hessian; off Γ (project=False) report ∇²L itself
    H = curv if on_manifold(problem, theta) else np.asarray(numpy_function(problem, "hessian")(theta))
    m, lam, U_n, U_t = rank_and_basis(curv)
    f = build(problem, noise, observable, m, "numpy")
    out = {k: np.asarray(v, float) + 0.0 for k, v in f(theta, eta, sigma).items()}
    P_T = np.eye(problem.dim) - U_n @ U_n.T

    # the closed form at the generic rank: at a rank drop (a degenerate point) it tells whether
    # the drift is finite there at all
    m_closed = max(m, S.generic_rank(problem, theta)) if problem.has_residuals else m
    closed_lead, closed_fin = _closed_form(problem, noise, m_closed, theta, P_T, eta, sigma)
    for label, general, closed in (("leading", out["drift_leading"], closed_lead),
                                   ("finite-η", out["drift_finite_eta"], closed_fin)):
        if not (np.all(np.isfinite(general)) and np.all(np.isfinite(closed))):
            where = (f"a degenerate point of Γ (H has rank {m} here, {m_closed} generically)" if m < m_closed
                     else "a degenerate point of Γ, or ηλ = 2")
            raise UserError(f"the predicted {label} drift under {noise} noise is not finite at this point "
                            f"({where}): choose a point where H has its generic rank")
        scale = max(np.max(np.abs(closed)), np.max(np.abs(general)), 1e-300)
        if m == m_closed and np.max(np.abs(general - closed)) > 1e-6 * scale:
            warnings.append(f"general rule and closed form disagree ({label}): {general.tolist()} vs {closed.tolist()}")

    # regime warnings need S (normal fluctuations) and the derivatives of H
    kappa = float(problem.kappa) if problem.kappa is not None else 0.5
    C = np.asarray(cov.BY_NAME[noise](CovarianceContext(
        H=curv, eye=np.eye(problem.dim), eta=eta, kappa=kappa, hyper={cov.SIGMA_KEY[noise]: sigma}, J=J)))
    eta_eff = eta * sigma**2 if noise == "sed" else eta
    warnings += regime_warnings(problem, theta, noise, eta_eff, m, lam, U_n, C, dH)

    R = _closed.regularizer(problem, noise, m, False)
    R_eta = _closed.regularizer(problem, noise, m, True)
    (r_txt, r_tex), (re_txt, re_tex) = _text(R, problem, theta), _text(R_eta, problem, theta)
    lam_max = float(lam[-1]) if lam.size else 0.0
    pred = Prediction(
        variables=list(problem.variables), point=theta.tolist(),
        projected_from=None if np.array_equal(theta, theta0) else theta0.tolist(),
        noise=noise, eta=eta, sigma=sigma, kappa=None if problem.kappa is None else float(problem.kappa),
        loss=str(problem.loss_expr),
        residuals=None if problem.residual_exprs is None else [str(r) for r in problem.residual_exprs],
        hessian=H.tolist(), eigenvalues=lam.tolist(), rank=m, tangent_basis=U_t.T.tolist(),
        regularizer=r_txt, regularizer_finite_eta=re_txt, regularizer_latex=r_tex,
        regularizer_finite_eta_latex=re_tex,
        drift_leading=out["drift_leading"].tolist(), drift_finite_eta=out["drift_finite_eta"].tolist(),
        drift_closed_form_leading=closed_lead.tolist(), drift_closed_form_finite_eta=closed_fin.tolist(),
        eta_lambda_max=eta_eff * lam_max, warnings=warnings,
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
    return pred
