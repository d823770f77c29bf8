"""Built-in learners: GD and optax's optimizers, as init/step pairs."""
import jax
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


@hookimpl
def flatland_learners(register):
    register("gd", gradient_descent, "full-batch gradient descent θ ← θ − η∇L")
    register("adam", lambda: optax_learner("adam", optax.adam, learning_rate=1e-3), "Adam (optax.adam)")
    register("rmsprop", lambda: optax_learner("rmsprop", optax.rmsprop, learning_rate=1e-3), "RMSprop (optax.rmsprop)")
