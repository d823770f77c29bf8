"""Drift estimators: exact conditional moments of a step, and statistics across chains.

The Rao–Blackwellised drift is the average, along simulated trajectories, of
the exact conditional mean step m(θ) = E[Δθ | θ_t]; for an observable c it adds
the Itô term, E[Δc | θ] = ∇c·m + ½ tr(∇²c (Cov[Δθ|θ] + m mᵀ)), exact for
quadratic c and correct to third moments of the step otherwise. Its standard
error is far smaller than the raw displacement's (≈40× for update noise).

``step_moments`` builds (m, Cov) from what the components declare — never from
their names: a learner's :class:`~flatland.StepMoments` (affine in the gradient
with a gain, or its own moments) and a noise model's ``grad_cov``/``param_cov``.
Where a declaration is missing, ``missing_moments`` says which, and only the
raw mean displacement is available. Statistics: per-chain time averages are
independent across chains, so their spread gives the standard error; ratios
use the paired delta method.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .contracts import Oracle

MAX_DIM = 2000  # d × d covariances beyond this are not what the Rao–Blackwellised estimator is for


def exact_oracle(loss) -> Oracle:
    """The noise-free oracle (exact loss and gradient)."""
    return Oracle(value=lambda key, p: loss(p), grad=lambda key, p: jax.grad(loss)(p))


def missing_moments(loss, noise, learner, params) -> Optional[str]:
    """Why the exact conditional step moments are unknown for this triple at ``params`` (None: known); the
    drift is then measured by raw displacement."""
    decl = learner.moments
    if decl is None:
        return f"learner {learner.name!r} declares no step moments (Learner.moments)"
    d = ravel_pytree(params)[0].shape[0]
    if d > MAX_DIM:
        return f"{d} parameters: the exact d × d step moments are for small problems (≤ {MAX_DIM})"
    if noise.param_cov(params, {k: jnp.asarray(v) for k, v in noise.hyper.items()}) is None:
        return f"noise model {noise.name!r} overrides perturb_params but declares no param_cov"
    gcov = noise.grad_cov(loss, params, {k: jnp.asarray(v) for k, v in noise.hyper.items()})
    if decl.gradient_gain is not None and gcov is None:
        return f"noise model {noise.name!r} changes the objective or gradient but declares no grad_cov"
    if decl.own is not None and (gcov is None or bool(np.any(np.asarray(gcov) != 0))):
        return (f"learner {learner.name!r} states its own moments for an exact objective, and noise model "
                f"{noise.name!r} changes the objective or gradient")
    if decl.own is not None:  # a declaration may hold only for some problems (quadrature: a few parameters)
        hyper = {k: jnp.asarray(v) for k, v in learner.hyper.items()}
        try:
            decl.own(loss, params, learner.init(params, hyper), hyper)
        except ValueError as exc:
            return f"learner {learner.name!r} cannot state its own moments here ({exc})"
    return None


def step_moments(loss, noise, learner, params=None) -> Optional[Callable]:
    """``moments(params, state, hyper) -> (mean (d,), cov (d, d))`` of Δθ, or None if unknown.

    ``hyper`` is the simulator's ``{"learner": ..., "noise": ...}``; params may
    be any pytree (flattened with ``ravel_pytree``), but the covariance is
    d × d, so keep this to small problems. ``params`` (a template) lets the
    declarations be checked up front (see ``missing_moments``).
    """
    decl = learner.moments
    if decl is None or (params is not None and missing_moments(loss, noise, learner, params) is not None):
        return None
    oracle = exact_oracle(loss)
    key0 = jax.random.PRNGKey(0)
    if decl.gradient_gain is not None:
        advance = decl.mean_step or (lambda p, s, h, o: learner.step(key0, p, s, h, o)[0])

        def moments(params, state, hyper):
            new = advance(params, state, hyper["learner"], oracle)
            mean = ravel_pytree(new)[0] - ravel_pytree(params)[0]
            gcov = noise.grad_cov(loss, params, hyper["noise"])
            cov = decl.gradient_gain(hyper["learner"]) ** 2 * gcov + noise.param_cov(params, hyper["noise"])
            if decl.own_cov is not None:
                cov = cov + decl.own_cov(params, hyper["learner"])
            return mean, cov
        return moments

    def own(params, state, hyper):
        mean, cov = decl.own(loss, params, state, hyper["learner"])
        return mean, cov + noise.param_cov(params, hyper["noise"])
    return own


def normal_rank(loss, flat, unravel, rel_tol: float = 1e-8) -> int:
    """The codimension of Γ at a point ``flat`` on it: the number of Hessian eigenvalues above ``rel_tol``·max.

    On Γ the tangent eigenvalues are zero to rounding (≈1e-16 relative), so
    the count is sharp there; off Γ it is not (see :func:`project_to_manifold`).
    """
    lam = np.linalg.eigvalsh(np.asarray(jax.hessian(lambda f: loss(unravel(f)))(jnp.asarray(flat, float))))
    top = float(np.max(np.abs(lam))) if lam.size else 0.0
    return int(np.sum(lam > rel_tol * top)) if top > 0 else 0


# the line search's candidate fractions of the full step; NumPy, not jnp, so that importing flatland starts no
# JAX backend (a sweep worker pins itself to one core before its backend sizes XLA's thread pool)
_STEP_SIZES = 0.5 ** np.arange(0.0, 31.0)

#: powers of H that carry the normal eigenvectors along under differentiation (see normal_newton_direction)
_SUBSPACE_POWERS = 3


def normal_newton_direction(H, g, rank: int):
    """The Newton step V|Λ|⁻¹Vᵀg on the ``rank`` largest eigenpairs (Λ, V) of H, differentiable everywhere.

    Its value is that of the eigen-decomposition. Its derivatives are not taken
    through ``eigh``: the derivative of eigenvectors divides by differences of
    eigenvalues, and the tangent eigenvalues coincide on Γ (to rounding; exactly
    where parameters do not enter the loss), so autodiff gave NaN in some or all
    chains. Here V₀ and Λ₀ come from ``eigh`` under ``stop_gradient``, and the
    normal space is the span of Q = H^k V₀ Λ₀^-k: equal to V₀ in value, and it
    moves with H as the eigenspace does up to relative terms (λ_tangent/λ_normal)^k
    (k = ``_SUBSPACE_POWERS``; near Γ that ratio is of the order of the distance
    to Γ). The step is Newton's on span(Q), Q M⁻¹ Qᵀg with M = S QᵀHQ (S: the signs
    of Λ₀), and M⁻¹ is two Newton–Schulz steps from X₀ = |Λ₀|⁻¹ (:func:`_refined`).

    Only matrix products are differentiated, on purpose: the derivative of a batched
    LAPACK call (``solve``) holds independent such calls, which can hang XLA's CPU pool
    (``drift._after`` says how; seen with jaxlib 0.10.2 on 2 cores). The one ``eigh``
    per iterate runs alone: each depends on the one before.
    """
    lam, V = jnp.linalg.eigh(jax.lax.stop_gradient(H))
    lam, V = lam[-rank:], V[:, -rank:]  # the normal space: the largest eigenpairs
    nonzero = jnp.abs(lam) > 0
    safe = jnp.where(nonzero, lam, 1.0)
    Q = V
    for _ in range(_SUBSPACE_POWERS):
        Q = (H @ Q) / safe
    Q = Q * nonzero  # a zero eigenvalue: no step along it
    M = jnp.where(nonzero, jnp.sign(lam), 0.0)[:, None] * (Q.T @ H @ Q) + jnp.diag(~nonzero * 1.0)
    return Q @ (_refined(M, jnp.diag(1.0 / jnp.abs(safe))) @ (Q.T @ g))


def _refined(M, X):
    """M⁻¹ from X = M⁻¹ held constant under differentiation: two Newton–Schulz steps X ← X(2I − MX). The
    error I − MX is first order in a change of M and is squared at each step, so the value and the first and
    second derivatives are those of M⁻¹, from matrix products only (see :func:`normal_newton_direction`)."""
    two = 2.0 * jnp.eye(M.shape[0])
    for _ in range(2):
        X = X @ (two - M @ X)
    return X


def _inverse(M):
    """M⁻¹ whose derivatives are taken through matrix products only: one LAPACK inverse, not differentiated."""
    return _refined(M, jnp.linalg.inv(jax.lax.stop_gradient(M)))


def project_to_manifold(loss, flat, unravel, iters: int = 6, rank: int | None = None, line_search: bool = True):
    """A point of Γ near flat θ, by safeguarded Gauss–Newton steps on the normal space.

    With residuals: θ ← θ − t·Jᵀ(JJᵀ)⁻¹r. With only a value L: a Newton step
    restricted to the ``rank`` largest eigenpairs of ∇²L (the normal space;
    ``rank`` from :func:`normal_rank` at a point on Γ; required). Why the
    restriction: off Γ the tangent eigenvalues of ∇²L are O(distance) and of
    either sign, and a pseudo-inverse that inverts them throws points far
    along Γ. Each step is safeguarded by a line search: t is the largest of
    1, ½, ¼, … (or 0) that lowers L, so L never rises. Callers check L ≈ 0
    afterwards (:func:`projection_failed`). ``line_search=False`` takes full
    steps: a smooth map of θ for autodiff, right only from points already
    close to Γ (the chains' normal fluctuations).

    Predictions are evaluated there, not at the off-manifold θ: the formulas
    hold on Γ and off it pick up O(normal distance²) terms. Converges
    quadratically from the normal fluctuations; which nearby point is chosen
    only moves it O(distance²) along Γ.
    """
    Lf = lambda f: loss(unravel(f))  # noqa: E731
    if loss.residuals is None and rank is None:
        raise ValueError("project_to_manifold: a loss without residuals needs rank (normal_rank at a point on Γ)")

    def direction(th):
        if loss.residuals is not None:
            r = lambda f: jnp.ravel(loss.residuals(unravel(f)))  # noqa: E731
            J = jax.jacfwd(r)(th)
            JJ = J @ J.T
            JJ = JJ + 1e-14 * jnp.trace(JJ) * jnp.eye(JJ.shape[0])  # guards a rank drop
            return J.T @ (_inverse(JJ) @ r(th))
        return normal_newton_direction(jax.hessian(Lf)(th), jax.grad(Lf)(th), rank)

    def step(th, _):
        if not line_search:
            return th - direction(th), None
        trial = th[None, :] - _STEP_SIZES[:, None] * direction(th)[None, :]
        values = jax.vmap(Lf)(trial)
        ok = jnp.isfinite(values) & (values < Lf(th))
        best = jnp.argmax(ok)  # the first (largest) step that lowers L
        return jnp.where(ok[best], trial[best], th), None

    if loss.residuals is None and rank == 0:
        return flat
    return jax.lax.scan(step, flat, None, length=iters)[0]


def projection_failed(loss, flat, on, unravel, rel: float = 1e-4, floor: float = 1e-20):
    """True where the projection did not reach Γ: L(on) > ``rel``·L(θ) + ``floor``."""
    return loss(unravel(on)) > rel * loss(unravel(flat)) + floor


def projector(loss, point, unravel=lambda f: f):
    """``project(flat) -> (on, failed)`` for ``loss``: :func:`project_to_manifold` and :func:`projection_failed`.

    ``project.smooth(flat) -> on`` is the same map without the line search
    (three full steps), cheap to differentiate twice: the drift driver's
    Rao–Blackwellised estimator of observables at the projected point uses it.

    ``point`` is a point on Γ, where a value-only loss's codimension is read
    (:func:`normal_rank`).
    """
    rank = None if loss.residuals is not None else normal_rank(loss, np.ravel(point), unravel)

    def project(flat):
        on = project_to_manifold(loss, flat, unravel, rank=rank)
        return on, projection_failed(loss, flat, on, unravel)

    project.smooth = lambda flat: project_to_manifold(loss, flat, unravel, iters=3, rank=rank, line_search=False)
    return project


def observable_step(c: Callable, mean, cov, flat, cubature: bool = False):
    """E[Δc | θ] = E[c(θ + Δ)] − c(θ) for a step Δ of mean m and covariance C, at flat θ.

    By default the second-order expansion ∇c·m + ½ tr(∇²c (C + m mᵀ)): exact for quadratic c whatever
    the step's law, and it leaves out terms of order three and four, relatively O(σ²). ``cubature=True``
    takes instead the fully symmetric cubature of degree 5 for a Gaussian step (2d² + 1 points, Stroud's
    rule; no derivatives): also exact for quadratic c whatever the law, and for c of degree ≤ 5 when the
    step is Gaussian (update, gradient and label noise on GD), at about twice the cost. The projection of a
    loss given only by its value needs it: on log(1 + (wx − 1)²) + 1 − cos(y − z²) at σ = 0.01 the
    expansion measured the projected point's step 2.2% high (0.9–3.1% per coordinate against the exact
    expectation by a degree-13 cubature, which the rule meets to 3e-5), and a correct prediction failed;
    for the Gauss–Newton projection of residuals the expansion is off by ≤ 0.35% there.

    ``c`` may be scalar- or vector-valued (e.g. the projection Φ itself: then
    this is the Rao–Blackwellised step of the projected point, per coordinate).
    """
    if not cubature:
        g = jax.jacfwd(c)(flat)
        h = jax.jacfwd(jax.jacfwd(c))(flat)  # forward over forward: compiles faster than hessian for small d
        return g @ mean + 0.5 * jnp.tensordot(h, cov + jnp.outer(mean, mean), axes=2)
    points, weights = _degree5_rule(flat.shape[0])
    root = _psd_root(0.5 * (cov + cov.T))      # root rootᵀ = C (C may be singular)
    at = c(flat)
    moved = jax.vmap(lambda z: c(flat + mean + root @ z))(jnp.asarray(points, flat.dtype))
    return jnp.tensordot(jnp.asarray(weights, flat.dtype), moved - at, axes=1)


def _psd_root(C):
    """A lower-triangular R with R Rᵀ = C for a positive semi-definite C: Cholesky written with array
    operations; a variance left below 1e-24 of the largest (rounding of a singular C) gives a zero column.
    Not LAPACK's: a batched LAPACK call beside the prediction's can hang XLA's CPU pool (see ``drift._after``)."""
    d = C.shape[0]
    floor = 1e-24 * jnp.max(jnp.abs(jnp.diag(C)))
    R = jnp.zeros_like(C)
    for j in range(d):
        left = C[j, j] - R[j, :j] @ R[j, :j]
        ok = left > floor
        pivot = jnp.sqrt(jnp.where(ok, left, 1.0))
        below = (C[j + 1:, j] - R[j + 1:, :j] @ R[j, :j]) / pivot
        R = R.at[j, j].set(jnp.where(ok, pivot, 0.0)).at[j + 1:, j].set(jnp.where(ok, below, 0.0))
    return R


@functools.lru_cache(maxsize=None)
def _degree5_rule(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and weights of a cubature exact for polynomials of degree ≤ 5 against N(0, I_d): the origin,
    ±√(d+2)·e_i and ±√((d+2)/2)·(e_i ± e_j), with weights 2/(d+2), (4 − d)/(2(d+2)²) and 1/(d+2)²."""
    points, weights = [np.zeros(d)], [2.0 / (d + 2)]
    eye = np.eye(d)
    for i in range(d):
        for sign in (1.0, -1.0):
            points.append(sign * np.sqrt(d + 2.0) * eye[i])
            weights.append((4.0 - d) / (2.0 * (d + 2) ** 2))
        for j in range(i + 1, d):
            for si in (1.0, -1.0):
                for sj in (1.0, -1.0):
                    points.append(np.sqrt((d + 2) / 2.0) * (si * eye[i] + sj * eye[j]))
                    weights.append(1.0 / (d + 2) ** 2)
    return np.array(points), np.array(weights)


def linear_stationary_cov(dmean: np.ndarray, cov: np.ndarray, H: np.ndarray, rel_tol: float = 1e-8) -> np.ndarray:
    """Linearised stationary covariance S of the normal coordinates at a point of Γ.

    Solves S = A S Aᵀ + C_N on the normal space (H's eigenvectors with
    eigenvalue > rel_tol·max), with A = I + ``dmean`` (``dmean`` = ∂m/∂θ of the
    conditional mean step). For GD A = I − ηH, which gives
    S_ij = C_ij/(η(λ_i+λ_j) − η²λ_iλ_j). Returns the ambient d × d S.
    """
    H = np.asarray(H)
    lam, V = np.linalg.eigh(H)
    Q = V[:, lam > rel_tol * max(np.abs(lam).max(), 1e-300)]
    m = Q.shape[1]
    if m == 0:
        return np.zeros_like(H)
    A = np.eye(H.shape[0]) + np.asarray(dmean)
    An, Cn = Q.T @ A @ Q, Q.T @ np.asarray(cov) @ Q
    K = np.eye(m * m) - np.kron(An, An)
    Sn = np.linalg.solve(K, Cn.reshape(-1)).reshape(m, m)
    Sn = 0.5 * (Sn + Sn.T)
    w, U = np.linalg.eigh(Sn)
    Sn = (U * np.clip(w, 0, None)) @ U.T  # guard: an unstable direction has no stationary law
    return Q @ Sn @ Q.T


# ---------------------------------------------------------------- statistics

def mean_se(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean over chains (axis 0) and its standard error."""
    x = np.asarray(x, float)
    n = x.shape[0]
    return x.mean(0), x.std(0, ddof=1) / math.sqrt(n)


def finite_chains(*per_chain) -> np.ndarray:
    """Mask of the chains (leading axis) whose entries are finite in every given array (None skipped). A
    chain's autodiff through the projection can be NaN where eigenvalues of ∇²L cross off Γ."""
    arrays = [np.asarray(a, float) for a in per_chain if a is not None]
    keep = np.ones(arrays[0].shape[0], bool)
    for a in arrays:
        keep &= np.all(np.isfinite(a.reshape(a.shape[0], -1)), axis=1)
    return keep


def ratio_along(measured, predicted) -> dict:
    """Measured/predicted along the mean predicted direction, and the part across it, paired over chains.

    ``measured`` and ``predicted`` are per-chain (n, d) (or (n,)) time averages
    on the same trajectories. With u = p̄/|p̄|, a_i = m_i·u, b_i = p_i·u:
    R = ā/b̄, s.e.(R) = sd(a − R b)/(√n |b̄|) (delta method). Across: the mean
    of the paired differences m_i − p_i with their u-component removed, as a
    fraction of |p̄| (``across``; 0 when the whole vector agrees); its s.e.
    (``across_stderr``) is √(largest eigenvalue) of that mean's covariance over
    |p̄| — the s.e. along the worst direction, so it bounds the delta-method
    s.e. of the norm whichever way the mean points.
    """
    m = np.asarray(measured, float)
    p = np.asarray(predicted, float)
    if m.ndim == 1:
        m, p = m[:, None], p[:, None]
    n = m.shape[0]
    pbar = p.mean(0)
    norm = float(np.linalg.norm(pbar))
    if norm == 0 or not np.isfinite(norm):
        return {"ratio": float("nan"), "ratio_stderr": float("nan"), "across": float("nan"),
                "across_stderr": float("nan"), "direction": pbar.tolist()}
    u = pbar / norm
    a, b = m @ u, p @ u
    R = a.mean() / b.mean()
    se = (a - R * b).std(ddof=1) / (math.sqrt(n) * abs(b.mean()))
    d = m - p
    w = d - np.outer(d @ u, u)  # the paired differences across u
    across = np.linalg.norm(w.mean(0)) / norm
    if m.shape[1] > 1:
        cov = np.atleast_2d(np.cov(w, rowvar=False)) / n
        across_se = math.sqrt(max(float(np.linalg.eigvalsh(cov)[-1]), 0.0)) / norm
    else:
        across_se = 0.0
    return {"ratio": float(R), "ratio_stderr": float(se), "across": float(across),
            "across_stderr": float(across_se), "direction": u.tolist()}


def difference_se(a, b) -> tuple[float, float]:
    """Mean of a − b and its s.e. for independent per-chain samples a, b."""
    ma, sa = mean_se(a)
    mb, sb = mean_se(b)
    return float(ma - mb), float(math.hypot(sa, sb))
