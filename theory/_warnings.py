"""Regime warnings: where the drift formulas stop being trustworthy (docs/plugins.md, "What the theory does").

* ηλ_max near 2 (edge of stability; ≥ 2 unstable), and above 0.2 where the
  leading order is off by ≈ ηλ/2;
* near a degenerate point of Γ: a small nonzero eigenvalue, a rank below the
  generic rank, or normal fluctuations S comparable to d², the squared distance
  to where an eigenvalue vanishes (relative error ≈ (1 + C_tt/C_nn)·S/d²) — d shortened by how
  far a planned run's chains spread toward it (tangent diffusion and drift);
* near a ReLU kink: a Max whose two largest arguments are within a few
  fluctuation standard deviations of swapping (or exactly tied).
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from . import _rule
from . import _symbolic as S
from ._manifold import local_rank
from ._problem import Problem

ETA_LAMBDA_WARN = 1.6
ETA_LAMBDA_LEADING = 0.2
SMALL_EIGEN_RATIO = 1e-3
#: a relative error worth a warning (a check's tolerance is 2%). Near a point where an eigenvalue vanishes
#: quadratically the prediction's next order is (1 + C_tt/C_nn)·S/d² (C's blocks along the way to that point
#: and along the normal): exact on the local form ½c s²n² at leading order in ηλ (docs/theory.md §8)
FLUCTUATION_RATIO = 0.01
KINK_STDS = 3.0


def _stability(eta_lam: float, noisy: bool = True) -> list[str]:
    """Edge-of-stability warnings; without noise (C = 0) leading order and finite η agree exactly, so the
    only warning left is instability."""
    if eta_lam >= 2:
        return [f"unstable: ηλ_max = {eta_lam:.3g} ≥ 2 (beyond the edge of stability); GD leaves Γ along the "
                "sharpest direction and the predictions do not apply"]
    if not noisy:
        return []
    if eta_lam >= ETA_LAMBDA_WARN:
        return [f"ηλ_max = {eta_lam:.3g} is near 2 (edge of stability): rare escapes dominate means; "
                "only the finite-η drift is meaningful"]
    if eta_lam > ETA_LAMBDA_LEADING:
        return [f"ηλ_max = {eta_lam:.3g} > {ETA_LAMBDA_LEADING}: the leading-order drift is off by ≈ ηλ/2 = "
                f"{eta_lam / 2:.0%}; use the finite-η drift"]
    return []


def _degenerate(problem, theta, m, lam, U_n, Sigma, dH, C=None, drift=None, horizon: int = 0,
                m_local: int | None = None) -> list[str]:
    """Warnings near a degenerate point. With ``horizon`` (the steps a run will take from ``theta``),
    the distance to it is shortened by how far the chains can go meanwhile: 2 std of tangent
    diffusion (P_T C P_T) plus the drift, both along the direction in which the eigenvalue falls."""
    out = []
    lam_n = lam[len(lam) - m:]
    if m and lam_n[0] < SMALL_EIGEN_RATIO * lam_n[-1]:
        out.append(f"near a degenerate point: the smallest nonzero eigenvalue {lam_n[0]:.3g} is "
                   f"{lam_n[0] / lam_n[-1]:.2g} of the largest")
    generic = local_rank(problem, theta) if m_local is None else m_local
    if m < generic:
        out.append(f"degenerate point: H has rank {m} here but {generic} at the points of Γ around it (rank "
                   "drop); the drift formulas break down near it")
    if Sigma is None or not m:
        return out
    P_T = np.eye(len(theta)) - U_n @ U_n.T
    for i in range(m):
        u = U_n[:, i]
        grad_lam = P_T @ np.einsum("i,kij,j->k", u, dH, u)
        norm = float(np.linalg.norm(grad_lam))
        if norm == 0 or lam_n[i] <= 0:
            continue
        dist = 2 * lam_n[i] / norm  # eigenvalues vanish quadratically at a degenerate point
        var = float(u @ Sigma @ u)
        e = -grad_lam / norm  # the way to the degenerate point
        c_nn = float(u @ C @ u) if C is not None else 0.0
        c_ss = float(e @ P_T @ C @ P_T @ e) if C is not None else 0.0
        order = 1.0 + c_ss / c_nn if c_nn > 0 else 1.0   # the next order's coefficient (docs/theory.md §8)
        reach = 0.0
        if horizon and C is not None:
            diffusion = c_ss * horizon
            toward = max(float(e @ drift), 0.0) * horizon if drift is not None else 0.0
            reach = 2 * math.sqrt(max(diffusion, 0.0)) + toward
        if reach >= dist:
            out.append(f"near a degenerate point: in the {horizon} steps planned the chains spread (2 std of "
                       f"tangent diffusion plus the drift) {reach:.3g} toward where eigenvalue {lam_n[i]:.3g} "
                       f"vanishes, {dist:.3g} away: they will reach it and the prediction fails there; "
                       f"start farther from it or shorten the run (--steps, --burn)")
            continue
        rel = order * var / (dist - reach) ** 2
        if rel > FLUCTUATION_RATIO:
            within = f" after the {horizon} planned steps' spread ({reach:.3g})" if reach else ""
            out.append(f"near a degenerate point: normal fluctuations (variance {var:.3g}) are not small against "
                       f"the squared distance ({dist - reach:.3g})² to where eigenvalue {lam_n[i]:.3g} "
                       f"vanishes{within}: expect a relative error ≈ {rel:.2g} ((1 + C_tt/C_nn)·S/d²), and a check's "
                       "measurement (a Gauss–Newton projection) to differ by a few times more")
    return out


def _observable_kinks(problem: Problem, observable: str, theta, Sigma) -> list[str]:
    """An observable that is not smooth at (or within the fluctuations of) the point: the Itô rule needs ∇²c."""
    from ._parse import parse_expr

    c = parse_expr(observable, problem.variables)
    out = []
    subs = dict(zip(problem.symbols, theta))
    std = math.sqrt(max(float(np.trace(Sigma)), 0.0)) if Sigma is not None else 0.0
    for a in sorted(c.atoms(sp.Abs), key=sp.default_sort_key):
        val = float(a.args[0].subs(subs))
        norm = float(np.linalg.norm([float(sp.diff(a.args[0], s).subs(subs)) for s in problem.symbols]))
        if val == 0 or (norm > 0 and abs(val) / norm < KINK_STDS * std):
            out.append(f"the observable is not smooth here: {a} has its kink within {abs(val) / max(norm, 1e-300):.3g} "
                       f"of this point; its drift per step is not given by the Itô rule (which needs ∇²c)")
    out += [w.replace("ReLU kink", "kink of the observable") for w in _kinks(problem, theta, Sigma, c)]
    return out


def _kinks(problem: Problem, theta, Sigma, expr=None) -> list[str]:
    out = []
    std = math.sqrt(max(float(np.trace(Sigma)), 0.0)) if Sigma is not None else 0.0
    subs = dict(zip(problem.symbols, theta))
    for m in S.kinks(problem.loss_expr if expr is None else expr):
        vals = [float(a.subs(subs)) for a in m.args]
        order = np.argsort(vals)[::-1]
        a, b = m.args[order[0]], m.args[order[1]]
        gap = vals[order[0]] - vals[order[1]]
        grad = np.array([float(sp.diff(a - b, s).subs(subs)) for s in problem.symbols])
        norm = float(np.linalg.norm(grad))
        if gap == 0:
            out.append(f"at a ReLU kink: {m} has a tie here; derivatives use the convention relu′(0) = 0")
        elif norm > 0 and gap / norm < KINK_STDS * std:
            out.append(f"near a ReLU kink: {m} switches within {gap / norm:.3g} of this point, "
                       f"less than {KINK_STDS:g} fluctuation std ({std:.3g}); the activation pattern will flip")
    return out


def regime_warnings(problem: Problem, theta, finite_eta: bool, eta_eff: float, m: int, lam, U_n, C, dH,
                    drift=None, horizon: int = 0, m_local: int | None = None,
                    observable: str | None = None) -> list[str]:
    """All regime warnings at ``theta`` (``eta_eff``: the learner's effective step size; ``finite_eta``:
    whether its potential part has a finite-η form; ``horizon``: steps a run will take, with ``drift``
    per step, so that nearness to a degenerate point counts where the chains will go; ``m_local``: the
    rank of H on Γ around ``theta``, when already known; ``observable``: its kinks near ``theta``)."""
    lam_max = float(lam[-1]) if len(lam) else 0.0
    eta_lam = eta_eff * lam_max
    out = _stability(eta_lam, noisy=bool(np.any(np.asarray(C) != 0)))
    Sigma = None
    if m and eta_lam < 2:
        lam_n, U = lam[len(lam) - m:], U_n
        Sigma = _rule.stationary_covariance(np, lam_n, U, C, eta_eff, True)
    out += _degenerate(problem, theta, m, lam, U_n, Sigma, dH, C, drift, horizon, m_local)
    out += _kinks(problem, theta, Sigma)
    if observable is not None:
        out += _observable_kinks(problem, observable, theta, Sigma)
    if not finite_eta:
        out.append("the learner's potential term has no known finite-η form; drift_finite_eta uses its leading order")
    return out
