"""Step composition and the optax wrapper."""
import jax
import jax.numpy as jnp
import optax
import pytest

import flatland
from flatland.testing import check_learner, smoke_loss


def test_optax_factory_sweeps_learning_rate_in_one_vmap():
    learner = flatland.optax_learner("sgd", optax.sgd, learning_rate=0.1)
    loss = smoke_loss()
    noise = flatland.assemble().registry.create("noise", "none")
    step = flatland.make_step(loss, noise, learner)
    p0 = loss.initial_params(None)
    lrs = jnp.array([0.0, 0.1, 0.2])
    hyper = {"learner": {"learning_rate": lrs}, "noise": {}}
    state = learner.init(p0, {"learning_rate": jnp.asarray(0.1)})
    p1, _, _ = jax.vmap(step, in_axes=(None, None, None, {"learner": {"learning_rate": 0}, "noise": {}}))(
        jax.random.PRNGKey(0), p0, state, hyper)
    g = jax.grad(loss)(p0)
    for i, lr in enumerate(lrs):
        want = jax.tree_util.tree_map(lambda p, d: p - lr * d, p0, g)
        got = jax.tree_util.tree_map(lambda x: x[i], p1)
        assert all(jnp.allclose(a, b, rtol=1e-12) for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)))


def test_ready_transformation_is_wrapped_in_one_line():
    learner = flatland.optax_learner("chain", optax.chain(optax.clip(1.0), optax.sgd(0.1)))
    check_learner(learner)


def test_bad_optax_arguments_are_clear():
    with pytest.raises(ValueError, match="needs at least one hyperparameter"):
        flatland.optax_learner("adam", optax.adam)
    with pytest.raises(ValueError, match="not to a ready transformation"):
        flatland.optax_learner("x", optax.sgd(0.1), learning_rate=0.1)


def test_as_hyper_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        flatland.as_hyper({"lr": 0.1}, {"lrr": 0.2})
