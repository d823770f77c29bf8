"""Built-in learners as init/step pairs: GD, heavy-ball momentum, SED and optax's Adam/RMSprop.

Every learner's hyperparameters are array leaves with the step size under
``lr``. Minibatch SGD is GD under the ``minibatch`` noise model (its batch size
is that model's factory option): the oracle a learner sees is already the
minibatch loss. ``gd`` and ``momentum`` move affinely in the oracle's gradient
(coefficient −lr) and ``sed`` has a Gaussian perturbation, so
flatland.estimators knows their exact conditional mean step; Adam and RMSprop
do not have one (their drift is measured by raw displacement only).
"""
import jax
import jax.numpy as jnp
import optax

from flatland import Learner, hookimpl, optax_learner

def gradient_descent() -> Learner:
    """θ ← θ − η g, with g from the (noisy) oracle."""

    def init(params, hyper):
        return ()

    def step(key, params, state, hyper, oracle):
        g = oracle.grad(key, params)
        return jax.tree_util.tree_map(lambda p, d: p - hyper["lr"] * d, params, g), state, {}

    return Learner("gd", init, step, {"lr": 0.05})


def momentum() -> Learner:
    """Heavy-ball momentum: v ← βv − η g, θ ← θ + v (state v starts at 0)."""

    def init(params, hyper):
        return jax.tree_util.tree_map(jnp.zeros_like, params)

    def step(key, params, state, hyper, oracle):
        g = oracle.grad(key, params)
        v = jax.tree_util.tree_map(lambda v, d: hyper["beta"] * v - hyper["lr"] * d, state, g)
        return jax.tree_util.tree_map(jnp.add, params, v), v, {}

    return Learner("momentum", init, step, {"lr": 0.05, "beta": 0.9})


def sed_scales(params, per_matrix: bool):
    """Per-leaf factor on N(0, s²) perturbations: 1, or 1/√rows for matrices (the paper's code)."""

    def scale(x):
        if per_matrix and jnp.ndim(x) >= 2:
            return 1.0 / jnp.sqrt(jnp.shape(x)[0])
        return 1.0

    return jax.tree_util.tree_map(scale, params)


def stochastic_error_descent(per_matrix: bool = False) -> Learner:
    """SED: θ ← θ − μ π [L(θ+π) − L(θ)], π ~ N(0, s²I) per leaf (``lr`` = μ, ``sigma`` = s).

    No gradient is used: the loss is evaluated twice with the same objective
    noise (so label noise, if any, is the same sample at θ and θ+π). With
    ``per_matrix=True`` each weight matrix is perturbed by N(0, s²)/√rows, the
    paper's convention. Its mean step is −μ s² ∇(L ∗ N(0, s²)) (Stein's lemma):
    gradient descent on the Gaussian-smoothed loss, whose extra term (s²/2) tr H
    is the implicit regularizer.
    """

    def init(params, hyper):
        return ()

    def step(key, params, state, hyper, oracle):
        k_pi, k_obj = jax.random.split(key)
        leaves, treedef = jax.tree_util.tree_flatten(params)
        keys = jax.random.split(k_pi, len(leaves))
        scales = jax.tree_util.tree_leaves(sed_scales(params, per_matrix))
        pi = [hyper["sigma"] * s * jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
              for k, s, x in zip(keys, scales, leaves)]
        pi = jax.tree_util.tree_unflatten(treedef, pi)
        moved = jax.tree_util.tree_map(jnp.add, params, pi)
        delta = oracle.value(k_obj, moved) - oracle.value(k_obj, params)
        new = jax.tree_util.tree_map(lambda p, q: p - hyper["lr"] * q * delta, params, pi)
        return new, state, {"delta_loss": delta}

    return Learner("sed", init, step, {"lr": 1.0, "sigma": 0.1})


def _adam(lr, b1, b2, eps):
    return optax.adam(learning_rate=lr, b1=b1, b2=b2, eps=eps)


def _rmsprop(lr, decay, eps):
    return optax.rmsprop(learning_rate=lr, decay=decay, eps=eps)


def adam() -> Learner:
    """Adam through optax, with optax's defaults and ``lr`` as the step-size key."""
    return optax_learner("adam", _adam, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8)


def rmsprop() -> Learner:
    """RMSprop through optax, with optax's defaults and ``lr`` as the step-size key."""
    return optax_learner("rmsprop", _rmsprop, lr=1e-3, decay=0.9, eps=1e-8)


@hookimpl
def flatland_learners(register):
    register("gd", gradient_descent, "full-batch gradient descent θ ← θ − η∇L (minibatch SGD: with noise 'minibatch')")
    register("momentum", momentum, "heavy-ball momentum v ← βv − η g, θ ← θ + v")
    register("sed", stochastic_error_descent, "stochastic error descent θ −= μ π ΔL, π ~ N(0, s²I) (option per_matrix)")
    register("adam", adam, "Adam (optax.adam), hyper lr, b1, b2, eps")
    register("rmsprop", rmsprop, "RMSprop (optax.rmsprop), hyper lr, decay, eps")
