"""Built-in noise models for learning near a zero-loss manifold.

Each states how it perturbs a step (see ``flatland.contracts.NoiseModel``) and,
where one exists, its per-step covariance C(θ) for ``flatland.theory``.
"""
import jax
import jax.numpy as jnp

from flatland import NoiseModel, hookimpl


def _normal_like(key, tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    noise = [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, noise)


class NoNoise(NoiseModel):
    """Exact gradients: plain GD drifts nowhere once on Γ."""

    name = "none"
    hyper = {}

    def covariance(self, ctx):
        return 0 * ctx.eye


class UpdateNoise(NoiseModel):
    """θ ← θ + N(0, σ²I) after each learner step."""

    name = "update"
    hyper = {"sigma": 0.01}

    def perturb_params(self, key, params, hyper):
        return jax.tree_util.tree_map(lambda p, n: p + hyper["sigma"] * n, params, _normal_like(key, params))

    def covariance(self, ctx):
        return ctx.hyper["sigma"] ** 2 * ctx.eye


@hookimpl
def flatland_noise_models(register):
    register("none", NoNoise, "no noise: exact gradients (plain GD has zero drift on Γ)")
    register("update", UpdateNoise, "isotropic update noise θ += N(0, σ²I); regularizer log pdet H")
