"""Measure PSP's rotational diffusion: simulate through the engine, estimate D from the angle MSD.

What: :func:`simulate` runs chains of the PSP network (``gda`` learner + ``synaptic`` noise, optionally
the online samples) from its fixed point in flatland's one compiled loop and records the rotation Q
every ``every`` steps; :func:`development` turns the Q's into the accumulated rotation angle(s);
:func:`diffusion_estimate` fits D.

The angle. Between two records the representation turns by R = Q_{m+1} Q_mᵀ ∈ SO(k); the skew
matrix log R has one angle per pair (i < j). Summing these small increments gives the *development*
a(t) ∈ ℝ^{k(k−1)/2} of the rotation (for k = 2 the unwrapped angle φ). For rotational Brownian motion
E‖a(t) − a(0)‖² = D t with D = Σ_{i<j} V_ij (:mod:`.theory`), and each pair's component grows at V_ij.

The estimator. The recorded angle is the slow rotation plus a stationary fluctuation ε from the fast,
relaxing directions, so MSD(τ) = D τ + 2 Var ε for lags τ past the relaxation time. Per chain we take
the time-averaged MSD over lags ``LAGS`` (records) and fit a + D τ by least squares; D̂ is the mean of
the per-chain slopes over the independent chains and its standard error their s.d./√chains.
"""
from __future__ import annotations

import numpy as np

LAGS = tuple(range(1, 9))   # lags in records (with every = 10 and η = 0.1: 10 … 80 steps; relaxation ≲ 10 steps)


def simulate(loss, noise_grid, *, eta: float, chains: int, steps: int, every: int, seed: int,
             online: bool = False, registry=None):
    """Q records (len(noise_grid), chains, steps // every + 1, k, k), the first at t = 0 (the start).

    ``noise_grid``: (σ_W, σ_M) per grid point, the per-step s.d. of the ``synaptic`` noise (one compile
    for the grid; Qin et al.'s σ is σ_W = σ_M = √η σ). ``online`` adds the ``online-samples`` noise
    (one fresh input per step) before it; otherwise the learner follows the expected (mean) rule.
    Each grid point and chain has its own key.
    """
    import jax
    import jax.numpy as jnp

    from flatland import as_hyper, assemble, compose_noise, ensemble, make_runner, make_step

    from .psp import rotation

    reg = registry if registry is not None else assemble().registry
    synaptic = reg.create("noise", "synaptic")
    noise = compose_noise([reg.create("noise", "online-samples"), synaptic]) if online else synaptic
    learner = reg.create("learners", "gda")
    grid = np.asarray(noise_grid, float).reshape(-1, 2)
    g = grid.shape[0]
    prefix = "synaptic." if online else ""
    hyper = {"learner": {k: jnp.full(g, v) for k, v in as_hyper(learner.hyper, {"lr": eta}).items()},
             "noise": {prefix + "sigma_w": jnp.asarray(grid[:, 0]), prefix + "sigma_m": jnp.asarray(grid[:, 1])}}
    run = ensemble(make_runner(make_step(loss, noise, learner), steps, every=every,
                               record=lambda p, s, h: rotation(p, loss)), hyper_axis=0)
    p0 = loss.init(jax.random.key(seed))
    params = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (g, chains) + x.shape), p0)
    keys = jax.random.split(jax.random.key(seed), g * chains).reshape(g, chains)
    tr = run(keys, params, jnp.zeros((g, chains)), hyper, 0)
    worst = int(np.max(np.asarray(tr.diverged_at)))
    if worst >= 0:
        raise FloatingPointError(f"a PSP chain diverged at step {worst}")
    q0 = np.broadcast_to(np.asarray(rotation(p0, loss)), (g, chains, 1) + p0["M"].shape)
    return np.concatenate([q0, np.asarray(tr.records)], axis=2)


def so_log(R: np.ndarray) -> np.ndarray:
    """The principal logarithm of rotations R (..., k, k) as skew matrices (eigen-decomposition)."""
    w, V = np.linalg.eig(R)
    L = V @ (np.log(w)[..., None] * np.linalg.inv(V))
    L = L.real
    return 0.5 * (L - np.swapaxes(L, -1, -2))


def development(Q: np.ndarray) -> np.ndarray:
    """Accumulated rotation angles (..., n_records, k(k−1)/2): pair (i, j), i < j, summed log increments."""
    R = Q[..., 1:, :, :] @ np.swapaxes(Q[..., :-1, :, :], -1, -2)
    A = so_log(R)
    k = Q.shape[-1]
    i, j = np.triu_indices(k, 1)
    inc = A[..., j, i]                               # angle turning direction i towards j
    zero = np.zeros(inc.shape[:-2] + (1, inc.shape[-1]))
    return np.concatenate([zero, np.cumsum(inc, axis=-2)], axis=-2)


def msd(a: np.ndarray, lags=LAGS) -> np.ndarray:
    """Time-averaged MSD per chain (..., len(lags)) of development a (..., n_records, pairs)."""
    return np.stack([np.mean(np.sum((a[..., lag:, :] - a[..., :-lag, :]) ** 2, axis=-1), axis=-1)
                     for lag in lags], axis=-1)


def diffusion_estimate(a: np.ndarray, every: int, lags=LAGS) -> dict:
    """D̂ (per step) with its standard error from developments a (chains, n_records, pairs) (module doc)."""
    m = msd(a, lags)                                          # (chains, L)
    tau = every * np.asarray(lags, float)
    X = np.c_[np.ones_like(tau), tau]
    coef = np.linalg.lstsq(X, m.T, rcond=None)[0]             # (2, chains)
    d = coef[1]
    return {"D": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(d.size)),
            "intercept": float(coef[0].mean()), "lags_steps": tau.tolist(), "msd": m.mean(0).tolist()}
