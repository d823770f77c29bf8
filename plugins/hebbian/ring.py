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

y is found by ``ITERATIONS`` steps of projected gradient descent with step 1/‖S‖_F (which converges for
positive definite S) from y = 0, and held fixed when differentiating (the envelope theorem).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from flatland import Loss, Metric, UserError

ITERATIONS = 60


def ring_inputs(n: int, positions: int, kappa: float) -> np.ndarray:
    """(n, positions): von Mises tuning curves with centres evenly spaced on the ring, peak 1."""
    theta = 2 * np.pi * np.arange(positions) / positions
    centres = 2 * np.pi * np.arange(n) / n
    return np.exp(kappa * (np.cos(theta[None, :] - centres[:, None]) - 1.0))


def outputs(W, M, X, beta, iterations: int = ITERATIONS):
    """y for every column of X (k × P), the non-negative minimiser of the module doc (held constant)."""
    S = 0.5 * (M + M.T)
    U = W @ X - beta
    step = 1.0 / jnp.sqrt(jnp.sum(S * S))
    Y = jax.lax.fori_loop(0, iterations, lambda i, Y: jnp.maximum(0.0, Y - step * (S @ Y - U)),
                          jnp.zeros_like(U))
    return jax.lax.stop_gradient(Y)


def nsm_ring_task(n: int = 32, k: int = 16, positions: int = 64, kappa: float = 4.0, beta: float = 0.1,
                  seed: int = 0) -> Loss:
    """The ring task: params {W (k × n), M (k × k)}; starts from small random W and M = I."""
    n, k, positions = int(n), int(k), int(positions)
    if not (1 <= k and 2 <= n and 4 <= positions):
        raise UserError(f"nsm-ring: need k ≥ 1, n ≥ 2, positions ≥ 4; got k={k}, n={n}, positions={positions}")
    if not (kappa > 0 and beta >= 0):
        raise UserError(f"nsm-ring: need kappa > 0 and beta ≥ 0; got kappa={kappa}, beta={beta}")
    X = jnp.asarray(ring_inputs(n, positions, kappa))
    theta = 2 * np.pi * np.arange(positions) / positions

    def objective(p, Xb):
        W, M = p["W"], p["M"]
        Y = outputs(W, M, Xb, beta)
        S = 0.5 * (M + M.T)
        inner = jnp.mean(-jnp.sum(Y * (W @ Xb), 0) + 0.5 * jnp.sum(Y * (S @ Y), 0) + beta * jnp.sum(Y, 0))
        return 0.5 * jnp.sum(W * W) - 0.25 * jnp.sum(M * M) + inner

    def init(key):
        W = jax.random.uniform(jax.random.fold_in(jax.random.key(seed), 0), (k, n), X.dtype) / np.sqrt(n)
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
