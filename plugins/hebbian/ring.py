"""Non-negative similarity matching on a ring: place fields that drift (Qin et al., Nat Neurosci 2023).

The network of :mod:`.psp` with non-negative outputs (Sengupta et al., NeurIPS 2018): for an input x
the output is the non-negative minimiser

    y(x) = argmin_{y ≥ 0}  −yᵀWx + ½ yᵀSy + β Σ_i y_i,      S = (M + Mᵀ)/2,

and the per-sample objective ℓ = ½‖W‖² − ¼‖M‖² + (that minimum) has, by the envelope theorem, the
gradients ∂_W ℓ = W − y xᵀ and ∂_M ℓ = ½(y yᵀ − M): the same Hebbian/anti-Hebbian rule as PSP under
the ``gda`` learner (τ = ½). Inputs are the population activity of ``n`` input cells with von Mises
tuning curves evenly spaced on a ring, at ``positions`` evenly spaced positions; the expected objective
averages ℓ over them. Such networks tile the ring with localised fields (place fields); under synaptic
noise the fields' centroids random-walk while the similarity matrix of the population stays put.

y is found by ``SWEEPS`` sweeps of coordinate descent from y = 0 (:func:`outputs`), and held fixed
when differentiating (the envelope theorem).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from flatland import Loss, Metric, UserError

SWEEPS = 40


def ring_inputs(n: int, positions: int, kappa: float, spread: float = 0.0, seed: int = 0) -> np.ndarray:
    """(n, positions): von Mises tuning curves on the ring, centres evenly spaced and peak 1 when
    ``spread`` = 0; otherwise each centre is moved by spread·U(−½, ½) spacings and each peak is
    1 + spread·U(−1, 1) (drawn with ``seed``), so cells of the output layer get unequal input."""
    theta = 2 * np.pi * np.arange(positions) / positions
    rng = np.random.default_rng(seed)
    centres = 2 * np.pi * (np.arange(n) + spread * rng.uniform(-0.5, 0.5, n)) / n
    peaks = 1.0 + spread * rng.uniform(-1.0, 1.0, n)
    return peaks[:, None] * np.exp(kappa * (np.cos(theta[None, :] - centres[:, None]) - 1.0))


def outputs(W, M, X, beta, sweeps: int = SWEEPS):
    """y for every column of X (k × P), the non-negative minimiser of the module doc (held constant).

    Coordinate descent: each sweep sets every y_i in turn to its exact minimiser given the others,
    y_i = max(0, (u_i − Σ_{j≠i} S_ij y_j) / S_ii) — the sequential form of the network's own
    recurrent dynamics; it converges for positive definite S.
    """
    S = 0.5 * (M + M.T)
    U = W @ X - beta
    k = S.shape[0]
    d = jnp.diag(S)

    def coordinate(i, Y):
        r = U[i] - S[i] @ Y + d[i] * Y[i]
        return Y.at[i].set(jnp.maximum(0.0, r / d[i]))

    Y = jax.lax.fori_loop(0, sweeps * k, lambda t, Y: coordinate(t % k, Y), jnp.zeros_like(U))
    return jax.lax.stop_gradient(Y)


def nsm_ring_task(n: int = 32, k: int = 16, positions: int = 32, kappa: float = 16.0, beta: float = 0.0,
                  spread: float = 0.0, seed: int = 0) -> Loss:
    """The ring task: params {W (k × n), M (k × k)}; starts from small random W and M = I.

    ``seed`` draws the input layout when ``spread`` > 0; the initial W comes from the run's key.
    """
    n, k, positions = int(n), int(k), int(positions)
    if not (1 <= k and 2 <= n and 4 <= positions):
        raise UserError(f"nsm-ring: need k ≥ 1, n ≥ 2, positions ≥ 4; got k={k}, n={n}, positions={positions}")
    if not (kappa > 0 and beta >= 0 and 0 <= spread < 1):
        raise UserError(f"nsm-ring: need kappa > 0, beta ≥ 0 and 0 ≤ spread < 1; got kappa={kappa}, beta={beta}, "
                        f"spread={spread}")
    X = jnp.asarray(ring_inputs(n, positions, kappa, spread, seed))
    theta = 2 * np.pi * np.arange(positions) / positions

    def objective(p, Xb):
        W, M = p["W"], p["M"]
        Y = outputs(W, M, Xb, beta)
        S = 0.5 * (M + M.T)
        inner = jnp.mean(-jnp.sum(Y * (W @ Xb), 0) + 0.5 * jnp.sum(Y * (S @ Y), 0) + beta * jnp.sum(Y, 0))
        return 0.5 * jnp.sum(W * W) - 0.25 * jnp.sum(M * M) + inner

    def init(key):
        """Small random feedforward weights drawn with the run's key (each network its own), M = I."""
        W = jax.random.uniform(key, (k, n), X.dtype) / np.sqrt(n)
        return {"W": W, "M": jnp.eye(k, dtype=X.dtype)}

    def draw(key):
        return X[:, jax.random.randint(key, (), 0, positions)]

    return Loss("nsm-ring", value=lambda p: objective(p, X), init=init,
                extras={"online": {"draw": draw, "value": lambda p, x: objective(p, x[:, None])},
                        "ring": {"responses": lambda p: outputs(p["W"], p["M"], X, beta), "theta": theta,
                                 "beta": beta}})


def centroids(Y, theta):
    """Circular centroid (radians, in [0, 2π)) and strength (mean response) of each cell's field, Y (..., k, P).

    The centroid is taken over the positions within 90° of the cell's peak, so that weak activity
    elsewhere on the ring does not pull it (a far bump moves a whole-ring circular mean a lot).
    """
    theta = jnp.asarray(theta)
    peak = theta[jnp.argmax(Y, -1)]
    near = jnp.cos(theta - peak[..., None]) > 0
    z = jnp.sum(jnp.where(near, Y, 0.0) * jnp.exp(1j * theta), -1)
    return jnp.mod(jnp.angle(z), 2 * jnp.pi), jnp.mean(Y, -1)


def centroid_metric(every: int = 100) -> Metric:
    def fn(params, loss):
        ring = loss.extras["ring"]
        return centroids(ring["responses"](params), ring["theta"])[0]

    return Metric("ring-centroids", fn, every, requires=("ring",))


def similarity_metric(every: int = 100) -> Metric:
    """YᵀY (positions × positions): how similar the population's responses at two positions are."""
    def fn(params, loss):
        Y = loss.extras["ring"]["responses"](params)
        return Y.T @ Y

    return Metric("ring-similarity", fn, every, requires=("ring",))
