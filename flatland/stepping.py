"""Composing one simulator step from a loss, a noise model and a learner.

``make_step(loss, noise, learner)`` returns a pure function
``step(key, params, state, hyper) -> (params, state, info)`` with
``hyper = {"learner": {...}, "noise": {...}}`` as array leaves. The order
within a step is: the learner queries the noisy oracle (label/minibatch noise
act on the objective, gradient noise on the gradient), moves, and then update
noise perturbs the new params. ``optax_learner`` wraps any optax
``GradientTransformation`` factory as a learner in one line.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from .contracts import Learner, Loss, NoiseModel, Oracle


def as_hyper(defaults, overrides=None, dtype=None) -> dict:
    """Merge ``overrides`` into ``defaults`` and make every value an array leaf.

    An unknown override key is a ValueError naming the known keys. A number
    given by a user (a Python scalar) must be a finite real, not true/false,
    and where the declared default is ≥ 0 it must be ≥ 0 too: a component
    declares a sign-free hyperparameter by giving it a negative default.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {', '.join(unknown)} (known: {', '.join(sorted(defaults)) or 'none'})")
    for k, v in overrides.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if isinstance(v, (bool, str)):
                raise ValueError(f"hyperparameter {k} must be a number, got {v!r}")
            continue  # arrays (grids, traced values) are the caller's business
        if not math.isfinite(v):
            raise ValueError(f"hyperparameter {k} must be finite, got {v!r}")
        d = defaults[k]
        if v < 0 and isinstance(d, (int, float)) and d >= 0:
            raise ValueError(f"hyperparameter {k} must be ≥ 0 (a non-negative quantity, default {d}), got {v!r}")
    dtype = dtype or jnp.result_type(float)
    return {k: jnp.asarray(overrides.get(k, v), dtype=dtype) for k, v in defaults.items()}


def positive_why(key: str) -> str:
    """Why a hyperparameter a component declares ``positive`` may not be 0, in a few words for its error."""
    return "the step size; lr = 0 would train nothing" if key == "lr" else "the component declares it positive"


def make_oracle(loss: Loss, noise: NoiseModel, noise_hyper) -> Oracle:
    """The noisy loss and gradient the learner sees (pure; built while tracing)."""

    def value(key, params):
        return noise.objective(loss, key, params, noise_hyper)

    def grad(key, params):
        k_obj, k_grad = jax.random.split(key)
        g = jax.grad(lambda p: noise.objective(loss, k_obj, p, noise_hyper))(params)
        return noise.perturb_grad(k_grad, g, noise_hyper)

    return Oracle(value=value, grad=grad)


def make_step(loss: Loss, noise: NoiseModel, learner: Learner) -> Callable:
    """One full step: learner move under the noisy oracle, then update noise."""

    def step(key, params, state, hyper):
        k_learn, k_update = jax.random.split(key)
        oracle = make_oracle(loss, noise, hyper["noise"])
        params, state, info = learner.step(k_learn, params, state, hyper["learner"], oracle)
        params = noise.perturb_params(k_update, params, hyper["noise"])
        return params, state, info

    return step


def optax_learner(name: str, transformation, **defaults) -> Learner:
    """Wrap optax as a learner in one line.

    With a factory and defaults, ``optax_learner("adam", optax.adam,
    learning_rate=1e-3)``, the hyperparameters are passed to the factory as
    traced arrays on every step, so they sweep under ``vmap`` and never
    recompile (the optimizer state layout must not depend on their values,
    true for optax's optimizers). A ready ``GradientTransformation``,
    ``optax_learner("mine", optax.chain(...))``, is wrapped as it is, with its
    hyperparameters fixed inside it. optax's ``learning_rate`` is stored as
    the hyperparameter ``lr`` (flatland's name for a step size, which
    ``flatland check --eta``, a sweep's ``learner.lr`` and a config's
    ``[learner] lr`` set) and handed back to the factory as ``learning_rate``.
    """
    import optax

    if isinstance(transformation, optax.GradientTransformation):
        if defaults:
            raise ValueError(f"optax learner {name!r}: hyperparameters go to a factory, not to a ready transformation")
        factory = lambda: transformation  # noqa: E731
    elif callable(transformation):
        if not defaults:
            raise ValueError(f"optax learner {name!r} needs at least one hyperparameter default (e.g. learning_rate=1e-3)")
        factory = transformation
    else:
        raise TypeError(f"optax learner {name!r}: expected an optax factory or GradientTransformation")

    renamed = "learning_rate" in defaults and "lr" not in defaults
    if renamed:
        defaults = {("lr" if k == "learning_rate" else k): v for k, v in defaults.items()}

    def make(hyper):
        return factory(**({("learning_rate" if k == "lr" else k): v for k, v in hyper.items()} if renamed else hyper))

    def init(params, hyper):
        return make(hyper).init(params)

    def step(key, params, state, hyper, oracle):
        grads = oracle.grad(key, params)
        updates, state = make(hyper).update(grads, state, params)
        return optax.apply_updates(params, updates), state, {}

    return Learner(name=name, init=init, step=step, hyper=dict(defaults))
