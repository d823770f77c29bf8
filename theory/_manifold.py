"""The zero-loss manifold Γ near a point: projection onto it, rank and tangent space.

``project`` follows noiseless descent to Γ with Gauss–Newton steps
θ ← θ − J⁺r on the residuals; when the loss is not a sum of squares, with
Newton steps restricted to the normal space (:func:`value_only_step`) and a
line search that never raises L. From a point near Γ they reach, to first
order, the closest point of Γ, in a handful of iterations. If they do not
reach zero loss, the point is far from any zero-loss manifold and a UserError
says so.
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


def _polish_gap(problem: Problem, theta) -> float:
    """What polishing a point of Γ lowers: max |r_i|, or |∇L| without residuals. L itself is no guide
    there: log(1 + u²) rounds to 0 for |u| < 1e-8, while its gradient is still exact."""
    if problem.has_residuals:
        return _off(problem, theta)
    g = np.asarray(numpy_function(problem, "gradient")(theta), float)
    return float(np.max(np.abs(g))) if np.all(np.isfinite(g)) else np.inf


#: the normal space off Γ: positive eigen-directions of H whose Newton step is at most this many times the
#: distance estimate 2L/|∇L| ...
NORMAL_REACH = 10.0
#: ... and that would each lower the quadratic model of L by at least this fraction of L
NORMAL_SHARE = 0.05
#: halvings of a value-only step before it is given up as not lowering L
LINE_SEARCH = 40


def value_only_step(L: float, g, H, rank: int | None = None):
    """H⁺∇L restricted to the normal space, for a loss given only by its value: the positive eigen-directions
    of H whose Newton step |g·u|/λ is at most ``NORMAL_REACH`` × 2L/|g| (a lower bound on the distance to
    Γ, exact for one normal direction) and that carry at least ``NORMAL_SHARE`` of L in the quadratic
    model, (g·u)²/2λ; the gradient step 2L·g/|g|² where no direction qualifies.

    Off Γ by n, H also has small tangent eigenvalues, O(L) and O(n) (for (xy − 1)²·(2 + sin z),
    (xy − 1)²·sin z along z, and (xy − 1)·(∂²(xy) term) in the xy-plane). The full pseudo-inverse divides the
    tangent gradient by them and steps towards a critical point of the tangent factor instead of towards
    Γ (from 0.003 off Γ to 181 away along z): an O(L) direction's step is O(1), beyond the reach; an O(n)
    direction's share of L is O(n). A normal direction left out this step (a soft one beside a stiff
    one that holds most of L) is taken at the next, once the stiff one is done.

    With ``rank`` (the codimension of Γ, read on Γ), the normal space is the ``rank`` largest eigen-directions
    and no filter is needed. Where H has no positive eigenvalue (far from Γ, where log(1 + r²) is concave),
    the gradient step; the caller's line search shortens it."""
    lam, U = np.linalg.eigh((H + H.T) / 2)
    top = float(np.max(lam)) if lam.size else 0.0
    gg = float(g @ g)
    if not gg > 0:
        return np.full(H.shape[0], np.nan)
    if not top > 0:
        return 2 * L * g / gg
    pos = np.flatnonzero(lam > RANK_RTOL * top)
    if rank is not None:
        pos = pos[-rank:] if rank > 0 else pos[:0]
        return U[:, pos] @ ((U[:, pos].T @ g) / lam[pos]) if pos.size else 2 * L * g / gg
    coef = U[:, pos].T @ g
    step = coef / lam[pos]
    if not L > 0:   # L rounded to 0 where ∇L has not (log(1 + u²) for |u| < 1e-8): its quadratic model
        L = 0.5 * float(coef @ step)
    share = coef * step / (2 * L)
    ok = np.abs(step) <= NORMAL_REACH * 2 * L / np.sqrt(gg)
    if not ok.any():
        return 2 * L * g / gg
    keep = ok & (share >= min(NORMAL_SHARE, float(share[ok].max())))
    return U[:, pos[keep]] @ step[keep]


def on_manifold(problem: Problem, theta) -> bool:
    scale = 1.0 + float(np.max(np.abs(theta)))
    tol = RESIDUAL_TOL * scale if problem.has_residuals else LOSS_TOL * scale**2
    return _off(problem, theta) <= tol


def project(problem: Problem, theta0) -> tuple[np.ndarray, float]:
    """(θ on Γ, distance moved). UserError when the iteration does not reach Γ.

    A loss given only by its value is projected twice: once with the filters of :func:`value_only_step`,
    which reach Γ but may also step along it (off Γ by 0.03, a tangent eigenvalue of 0.013 held 5% of L in
    log(1 + (xy − ½)² + (x − z)²), and the point moved 0.22 along Γ), then again from the start with the
    normal space known: the codimension of Γ read where the first pass landed. The nearer of the two points
    is returned."""
    theta = np.asarray(theta0, dtype=float)
    if on_manifold(problem, theta):
        return theta.copy(), 0.0
    landed = _descend(problem, theta)
    if not problem.has_residuals:
        H = np.asarray(numpy_function(problem, "hessian")(landed), float)
        rank = rank_and_basis(H)[0] if np.all(np.isfinite(H)) else None
        if rank is not None:
            try:
                again = _descend(problem, theta, rank)
            except UserError:
                again = landed   # the first pass's point stands
            if np.linalg.norm(again - theta) <= np.linalg.norm(landed - theta):
                landed = again   # the point of Γ nearer the start
    return landed, float(np.linalg.norm(landed - theta))


def _descend(problem: Problem, theta0, rank: int | None = None) -> np.ndarray:
    """Gauss–Newton (value-only: restricted Newton, ``rank`` normal directions when known) to Γ, polished."""
    theta = np.asarray(theta0, dtype=float).copy()
    start = theta.copy()
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
            if problem.has_residuals:
                return np.linalg.pinv(M, rcond=1e-12) @ v
            loss = float(numpy_function(problem, "loss")(theta))
            return _shortened(problem, theta, value_only_step(loss, v, M, rank))

    for _ in range(MAX_ITER):
        delta = step(theta)
        if not np.all(np.isfinite(delta)):
            break
        theta = theta - delta
        if on_manifold(problem, theta):
            for _ in range(5):  # polish to machine precision while it still helps
                better = theta - step(theta)
                if not np.all(np.isfinite(better)) or _polish_gap(problem, better) >= _polish_gap(problem, theta):
                    break
                theta = better
            return theta
        if np.linalg.norm(theta - start) > 1e6 * (1.0 + np.linalg.norm(start)):
            break
    point = ", ".join(f"{v}={x:g}" for v, x in zip(problem.variables, start))
    if not np.isfinite(_off(problem, start)):
        raise UserError(f"the loss is not finite at the point {point} (nor can it be followed to L = 0 from "
                        "there): choose a point where the loss and its derivatives are defined, near its zero set")
    raise UserError(f"the point {point} is far from any zero-loss manifold: projecting it onto L = 0 "
                    f"did not converge (loss there: {float(numpy_function(problem, 'loss')(start)):.3g})")


def _shortened(problem: Problem, theta, delta):
    """``delta`` halved until θ − delta has a lower loss (value-only losses, off Γ); unchanged where it already
    does or where L no longer resolves a decrease (within a few ulps of 0: the polish judges those by ∇L)."""
    if not np.all(np.isfinite(delta)):
        return delta
    loss = numpy_function(problem, "loss")
    L0 = float(loss(theta))
    if not np.isfinite(L0) or L0 <= LOSS_TOL * (1.0 + float(np.max(np.abs(theta)))) ** 2:
        return delta
    for _ in range(LINE_SEARCH):
        L1 = float(loss(theta - delta))
        if np.isfinite(L1) and L1 < L0:
            return delta
        delta = delta / 2
    return np.full_like(delta, np.nan)


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


def _curvature_eigenvalues(problem: Problem, theta) -> np.ndarray:
    """Eigenvalues of H at θ (of JᵀJ with residuals: the Gauss–Newton matrix, H itself on Γ); [] where not finite."""
    if problem.has_residuals:
        J = np.asarray(numpy_function(problem, "jacobian")(theta), float)
        H = J.T @ J
    else:
        H = np.asarray(numpy_function(problem, "hessian")(theta), float)
    return np.linalg.eigvalsh((H + H.T) / 2) if np.all(np.isfinite(H)) else np.zeros(0)


#: a neighbour's eigenvalue counts when above this fraction of the curvature before its projection
NEIGHBOUR_RTOL = 1e-6


def local_rank(problem: Problem, theta, tries: int = 6, seed: int = 0) -> int:
    """The rank of H on Γ around the point θ of Γ: the largest rank at θ and at the points of Γ that
    small random perturbations of θ (1e-3 of its scale) project to.

    A point where H has a lower rank than this is degenerate (where pieces of Γ cross, say). A point
    on a lower-dimensional piece of Γ is not: its neighbours on Γ lie on the same piece, whatever
    rank H has on the other pieces (Γ of r = (xy, xz) is the plane x = 0, rank 1, and the line
    y = z = 0, rank 2).

    A neighbour's eigenvalue counts when it is above ``NEIGHBOUR_RTOL`` of the curvature at the
    perturbed point before projection: projection ends a little off Γ (where L rounds to 0), and
    curvature that only comes from that remainder — on a valley flat to second order across Γ, such as
    (xy − 1)⁴, or off-Γ curvature of log(1 + r²) — vanishes on Γ itself.
    """
    theta = np.asarray(theta, float)
    rng = np.random.default_rng(seed)
    scale = 1e-3 * (1.0 + float(np.max(np.abs(theta))))
    best = rank_and_basis(np.diag(_curvature_eigenvalues(problem, theta)))[0]
    pairs = []
    for _ in range(tries):
        start = theta + scale * rng.standard_normal(theta.shape)
        try:
            near, _ = project(problem, start)
        except UserError:
            continue
        before, after = np.abs(_curvature_eigenvalues(problem, start)), _curvature_eigenvalues(problem, near)
        if before.size and after.size:
            pairs.append((float(before.max()), after))
    # one floor for every neighbour, from the largest curvature seen: a perturbation that happened to run
    # along Γ had almost none, and its own floor counted round-off (5e-15 on (xy − 1)⁴ at (1, 1)) as rank
    floor = NEIGHBOUR_RTOL * max((max(b, float(a.max())) for b, a in pairs), default=0.0)
    for _, after in pairs:
        best = max(best, int(np.sum(after > floor)) if floor > 0 else 0)
    return best
