"""Generic metrics: the loss value, the parameter and gradient norms (any loss), and recorded responses.

Each is ``Metric(name, fn(params, loss))`` with no ``requires``, so ``flatland
run`` can log it for every task (a valley, a network, a third-party loss).
``loss`` is the default of ``[run] metrics``. Norms are Euclidean over all
leaves of the params pytree, computed in float64 for the log.

``responses`` is what an experimenter would record: the activity of the
model's units for each stimulus, (stimuli, units), for any task whose Loss
declares ``extras["responses"](params)``. It goes to ``records/*.npz`` every
``log_every`` steps; ``flatland record`` turns those logs into sessions of a
recording (``flatland.infer``).
"""
import jax
import jax.numpy as jnp

from flatland import Metric, hookimpl


def loss_value(params, loss):
    """L(θ) as the loss defines it (``value``, or κ Σ r²)."""
    return loss(params)


def _norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(jnp.asarray(x, jnp.float64))) for x in jax.tree_util.tree_leaves(tree)))


def param_norm(params, loss):
    """‖θ‖₂ over every leaf of the params."""
    return _norm(params)


def grad_norm(params, loss):
    """‖∇L(θ)‖₂ of the exact (noise-free) loss."""
    return _norm(jax.grad(loss)(params))


GENERIC = {
    "loss": (loss_value, "the loss L(θ) (any task)"),
    "param_norm": (param_norm, "Euclidean norm ‖θ‖ of all parameters (any task)"),
    "grad_norm": (grad_norm, "Euclidean norm ‖∇L(θ)‖ of the exact gradient (any task)"),
}


def responses(params, loss):
    """The task's declared responses (stimuli, units), in float32 (a recording's precision)."""
    return jnp.asarray(loss.extras["responses"](params), jnp.float32)


def _factory(name, fn, requires=()):
    def factory(every=100):
        return Metric(name, fn, every, requires)
    return factory


@hookimpl
def flatland_metrics(register):
    for name, (fn, summary) in GENERIC.items():
        register(name, _factory(name, fn), summary)
    register("responses", _factory("responses", responses, ("responses",)),
             "unit activity per stimulus (stimuli × units) of a task that declares extras['responses'] → records/")
