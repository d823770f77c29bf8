"""The zero-loss manifold Γ near a point: projection onto it, rank and tangent space.

``project`` follows noiseless descent to Γ with Gauss–Newton steps
θ ← θ − J⁺r on the residuals (Newton steps θ ← θ − H⁺∇L when the loss is not
a sum of squares): from a point near Γ they reach, to first order, the
closest point of Γ, in a handful of iterations. If they do not reach zero
loss, the point is far from any zero-loss manifold and a UserError says so.
"""
from __future__ import annotations

import numpy as np

from flatland.errors import UserError

from ._lambdify import numpy_function
from ._problem import Problem

#: a point is on Γ when max |r_i| (or L) is below this, relative to the point's scale
RESIDUAL_TOL = 1e-12
LOSS_TOL = 1e-24
MAX_ITER = 200
#: eigenvalues below this fraction of the largest count as zero (the rank on Γ)
RANK_RTOL = 1e-9


def _off(problem: Problem, theta) -> float:
    """How far θ is from zero loss: max |r_i|, or L without residuals (NaN-safe)."""
    if problem.has_residuals:
        r = numpy_function(problem, "residuals")(theta)
        return float(np.max(np.abs(r))) if np.all(np.isfinite(r)) else np.inf
    L = float(numpy_function(problem, "loss")(theta))
    return abs(L) if np.isfinite(L) else np.inf


def on_manifold(problem: Problem, theta) -> bool:
    scale = 1.0 + float(np.max(np.abs(theta)))
    tol = RESIDUAL_TOL * scale if problem.has_residuals else LOSS_TOL * scale**2
    return _off(problem, theta) <= tol


def project(problem: Problem, theta0) -> tuple[np.ndarray, float]:
    """(θ on Γ, distance moved). UserError when the iteration does not reach Γ."""
    theta = np.asarray(theta0, dtype=float).copy()
    start = theta.copy()
    if on_manifold(problem, theta):
        return theta, 0.0
    def step(theta):
        """The Gauss–Newton (Newton) step; NaN where r, J (∇L, H) are not finite, which ends the iteration
        (the SVD of a matrix holding NaN does not converge, and inf warns)."""
        if problem.has_residuals:
            v, M = (np.asarray(numpy_function(problem, f)(theta), float) for f in ("residuals", "jacobian"))
        else:
            v, M = (np.asarray(numpy_function(problem, f)(theta), float) for f in ("gradient", "hessian"))
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(M))):
            return np.full_like(theta, np.nan)
        with np.errstate(all="ignore"):
            return np.linalg.pinv(M, rcond=1e-12, hermitian=not problem.has_residuals) @ v

    for _ in range(MAX_ITER):
        delta = step(theta)
        if not np.all(np.isfinite(delta)):
            break
        theta = theta - delta
        if on_manifold(problem, theta):
            for _ in range(3):  # polish to machine precision while it still helps
                better = theta - step(theta)
                if not np.all(np.isfinite(better)) or _off(problem, better) >= _off(problem, theta):
                    break
                theta = better
            return theta, float(np.linalg.norm(theta - start))
        if np.linalg.norm(theta - start) > 1e6 * (1.0 + np.linalg.norm(start)):
            break
    point = ", ".join(f"{v}={x:g}" for v, x in zip(problem.variables, start))
    if not np.isfinite(_off(problem, start)):
        raise UserError(f"the loss is not finite at the point {point} (nor can it be followed to L = 0 from "
                        "there): choose a point where the loss and its derivatives are defined, near its zero set")
    raise UserError(f"the point {point} is far from any zero-loss manifold: projecting it onto L = 0 "
                    f"did not converge (loss there: {float(numpy_function(problem, 'loss')(start)):.3g})")


def rank_and_basis(H) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(rank m, eigenvalues ascending, normal basis (d×m), tangent basis (d×(d−m))) of a symmetric H.

    Basis vectors are signed so that their largest-magnitude entry is positive.
    """
    H = np.asarray(H, float)
    lam, U = np.linalg.eigh((H + H.T) / 2)
    top = float(np.max(np.abs(lam))) if lam.size else 0.0
    m = int(np.sum(lam > RANK_RTOL * top)) if top > 0 else 0
    idx = np.argmax(np.abs(U), axis=0)
    U = U * np.sign(U[idx, np.arange(U.shape[1])])
    d = H.shape[0]
    return m, lam, U[:, d - m:], U[:, : d - m]
