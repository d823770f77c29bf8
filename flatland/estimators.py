"""Drift estimators: exact conditional moments of a step, and statistics across chains.

The Rao–Blackwellised drift is the average, along simulated trajectories, of
the exact conditional mean step m(θ) = E[Δθ | θ_t] (THEORY.md, "Measuring drift
precisely"); for an observable c it adds the Itô term,
E[Δc | θ] = ∇c·m + ½ tr(∇²c (Cov[Δθ|θ] + m mᵀ)), exact for quadratic c and
correct to third moments of the step otherwise. ``step_moments`` builds
(m, Cov) for a (loss, noise, learner) where they are known exactly:

* learners affine in the gradient (``gd``, ``momentum``: move = move(∇L) −
  η (g − ∇L)) under noise models that state ``grad_cov``/``param_cov``;
* ``sed`` (θ −= μ π ΔL) under no noise or update noise: moments of
  π·ΔL by tensor Gauss–Hermite quadrature over π ~ N(0, s²I); with n nodes
  per coordinate the mean is exact for a polynomial loss of degree ≤ 2n − 2
  and the covariance for degree ≤ n − 2 (n = 6: quartic valleys exactly).

Anything else (Adam, RMSprop, custom learners) has no exact conditional mean:
``step_moments`` returns None and only the raw mean displacement is available.
Statistics: per-chain time averages are independent across chains, so their
spread gives the standard error; ratios use the paired delta method.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .contracts import Oracle

LINEAR_IN_GRADIENT = ("gd", "momentum")
GH_MAX_DIM = 4


def exact_oracle(loss) -> Oracle:
    """The noise-free oracle (exact loss and gradient)."""
    return Oracle(value=lambda key, p: loss(p), grad=lambda key, p: jax.grad(loss)(p))


def gauss_hermite(dim: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product nodes z (n^dim, dim) and weights w (sum 1) for E f(z), z ~ N(0, I)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    wgrids = np.meshgrid(*([w] * dim), indexing="ij")
    z = np.stack([g.ravel() for g in grids], axis=1)
    weights = np.prod(np.stack([g.ravel() for g in wgrids], axis=1), axis=1)
    return z, weights


def _noise_moments_known(noise) -> bool:
    return hasattr(noise, "grad_cov") and hasattr(noise, "param_cov")


def step_moments(loss, noise, learner, *, nodes: int = 6) -> Optional[Callable]:
    """``moments(params, state, hyper) -> (mean (d,), cov (d, d))`` of Δθ, or None if unknown.

    ``hyper`` is the simulator's ``{"learner": ..., "noise": ...}``; params may
    be any pytree (flattened with ``ravel_pytree``), but the covariance is
    d × d, so keep this to small problems.
    """
    if not _noise_moments_known(noise):
        return None
    oracle = exact_oracle(loss)
    key0 = jax.random.PRNGKey(0)
    if learner.name in LINEAR_IN_GRADIENT:
        def moments(params, state, hyper):
            new, _, _ = learner.step(key0, params, state, hyper["learner"], oracle)
            flat0, _ = ravel_pytree(params)
            mean = ravel_pytree(new)[0] - flat0
            gcov = noise.grad_cov(loss, params, hyper["noise"])
            cov = hyper["learner"]["lr"] ** 2 * gcov + noise.param_cov(params, hyper["noise"])
            return mean, cov
        return moments
    if learner.name == "sed" and noise.name in ("none", "update"):
        return _sed_moments(loss, noise, nodes)
    return None


def _sed_moments(loss, noise, nodes):
    def moments(params, state, hyper):
        flat, unravel = ravel_pytree(params)
        d = flat.shape[0]
        if d > GH_MAX_DIM:
            raise ValueError(f"SED conditional moments by quadrature need ≤ {GH_MAX_DIM} parameters, got {d}")
        z, w = gauss_hermite(d, nodes)
        s, mu = hyper["learner"]["sigma"], hyper["learner"]["lr"]
        pi = s * jnp.asarray(z)
        l0 = loss(unravel(flat))
        dl = jax.vmap(lambda q: loss(unravel(flat + q)))(pi) - l0
        step = -mu * pi * dl[:, None]
        w = jnp.asarray(w)
        mean = w @ step
        second = jnp.einsum("n,ni,nj->ij", w, step, step)
        cov = second - jnp.outer(mean, mean) + noise.param_cov(params, hyper["noise"])
        return mean, cov
    return moments


def project_to_manifold(loss, flat, unravel, iters: int = 3):
    """A point of Γ near flat θ: ``iters`` Gauss–Newton steps θ ← θ − Jᵀ(JJᵀ)⁻¹r (Newton θ − H⁺∇L without residuals).

    Predictions are evaluated there, not at the off-manifold θ: the formulas
    hold on Γ and off it pick up O(normal distance²) terms (≈ 0.5% at the
    suite's noise levels). Converges quadratically from the normal
    fluctuations; which nearby point is chosen only moves it O(distance²) along Γ.
    """
    def gn(th, _):
        if loss.residuals is not None:
            r = lambda f: jnp.ravel(loss.residuals(unravel(f)))
            J = jax.jacfwd(r)(th)
            JJ = J @ J.T
            JJ = JJ + 1e-14 * jnp.trace(JJ) * jnp.eye(JJ.shape[0])  # guards a rank drop
            return th - J.T @ jnp.linalg.solve(JJ, r(th)), None
        Lf = lambda f: loss(unravel(f))
        return th - jnp.linalg.pinv(jax.hessian(Lf)(th), rtol=1e-8, hermitian=True) @ jax.grad(Lf)(th), None

    return jax.lax.scan(gn, flat, None, length=iters)[0]


def observable_step(c: Callable, mean, cov, flat):
    """E[Δc | θ] ≈ ∇c·m + ½ tr(∇²c (C + m mᵀ)) at flat θ (exact for quadratic c)."""
    g = jax.grad(c)(flat)
    h = jax.hessian(c)(flat)
    ito = 0.5 * jnp.sum(h * (cov + jnp.outer(mean, mean)))
    return g @ mean + ito


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


def ratio_along(measured, predicted) -> dict:
    """Measured/predicted along the mean predicted direction, paired over chains.

    ``measured`` and ``predicted`` are per-chain (n, d) (or (n,)) time averages
    on the same trajectories. With u = p̄/|p̄|, a_i = m_i·u, b_i = p_i·u:
    R = ā/b̄, s.e.(R) = sd(a − R b)/(√n |b̄|) (delta method). Also the
    component of m̄ across u relative to |p̄|.
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
                "direction": pbar.tolist()}
    u = pbar / norm
    a, b = m @ u, p @ u
    R = a.mean() / b.mean()
    se = (a - R * b).std(ddof=1) / (math.sqrt(n) * abs(b.mean()))
    across = np.linalg.norm(m.mean(0) - a.mean() * u) / norm
    return {"ratio": float(R), "ratio_stderr": float(se), "across": float(across), "direction": u.tolist()}


def difference_se(a, b) -> tuple[float, float]:
    """Mean of a − b and its s.e. for independent per-chain samples a, b."""
    ma, sa = mean_se(a)
    mb, sb = mean_se(b)
    return float(ma - mb), float(math.hypot(sa, sb))
