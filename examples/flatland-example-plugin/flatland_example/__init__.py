"""An example third-party flatland plugin (entry point group ``flatland``).

It registers a learner, heavy-ball momentum with its own update noise, and a
loss, the ring valley r = x² + y² − 1 whose zero-loss manifold is the unit
circle. Install it with ``pip install ./examples/flatland-example-plugin`` and
it shows up in ``flatland list`` with its origin.
"""
import jax
import jax.numpy as jnp

from flatland import Learner, Loss, hookimpl


def noisy_heavy_ball() -> Learner:
    """v ← βv − η g;  θ ← θ + v + N(0, σ²I)."""

    def init(params, hyper):
        return jax.tree_util.tree_map(jnp.zeros_like, params)

    def step(key, params, velocity, hyper, oracle):
        k_grad, k_noise = jax.random.split(key)
        grads = oracle.grad(k_grad, params)
        velocity = jax.tree_util.tree_map(lambda v, g: hyper["beta"] * v - hyper["lr"] * g, velocity, grads)
        leaves, tree = jax.tree_util.tree_flatten(params)
        keys = jax.tree_util.tree_unflatten(tree, list(jax.random.split(k_noise, len(leaves))))
        params = jax.tree_util.tree_map(
            lambda p, v, k: p + v + hyper["sigma"] * jax.random.normal(k, jnp.shape(p), p.dtype),
            params, velocity, keys)
        return params, velocity, {}

    return Learner("noisy-heavy-ball", init, step, {"lr": 0.05, "beta": 0.9, "sigma": 0.01})


def ring(point=(1.0, 0.0)) -> Loss:
    """L = ½ (x² + y² − 1)²: Γ is the unit circle."""
    return Loss(name="ring", residuals=lambda t: jnp.stack([t[0] ** 2 + t[1] ** 2 - 1]), kappa=0.5,
                variables=("x", "y"), residual_exprs=("x**2 + y**2 - 1",),
                expr="0.5*(x**2 + y**2 - 1)**2", point=tuple(point))


@hookimpl
def flatland_learners(register):
    register("noisy-heavy-ball", noisy_heavy_ball, "heavy-ball momentum with update noise (example plugin)")


@hookimpl
def flatland_losses(register):
    register("ring", ring, "ring valley ½(x²+y²−1)², Γ the unit circle (example plugin)")
