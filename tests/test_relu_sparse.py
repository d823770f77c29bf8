"""The sparse GD step follows the dense step's trajectory (same noise, round-off differences only)."""
import numpy as np
import pytest
import jax

import flatland
from flatland.simulate import make_runner
from flatland_plugins.relu.sparse import UNROLL_MAX_INPUTS, make_sparse_grad, make_sparse_step


@pytest.mark.parametrize("task, options", [
    pytest.param("corridor", {}, marks=pytest.mark.slow),       # 18 inputs: the all-unit test as fused products
    ("random-mapping", {"d_in": UNROLL_MAX_INPUTS + 8, "d_out": 5, "T": 30}),   # more inputs: as a matrix product
])
def test_sparse_grad_equals_dense_grad(task, options):
    reg = flatland.assemble(strict=True).registry
    loss = reg.create("losses", task, seed=0, n_hid=40, **options)
    ctx = loss.extras["relu"]
    p = loss.init(jax.random.key(0))
    for n_dead in (0, 25, 38):  # exercise several capacity buckets
        q = dict(p, b=p["b"].at[:n_dead].set(-1e3))
        gs = jax.jit(make_sparse_grad(ctx))(q)
        gd = jax.grad(loss)(q)
        for k in gd:
            np.testing.assert_allclose(gs[k], gd[k], rtol=1e-12, atol=1e-15)
            if k != "V":
                assert np.all(np.asarray(gs[k])[:n_dead] == 0)


@pytest.mark.slow  # a long scientific comparison: CI's second stage runs it
def test_sparse_trajectory_matches_dense():
    reg = flatland.assemble(strict=True).registry
    loss = reg.create("losses", "corridor", seed=0, n_hid=30)
    noise, gd = reg.create("noise", "gradient"), reg.create("learners", "gd")
    hyper = {"learner": flatland.as_hyper(gd.hyper, {"lr": 0.4}), "noise": flatland.as_hyper(noise.hyper, {"sigma": 0.03})}
    p = loss.init(jax.random.key(3))
    p = dict(p, b=p["b"].at[:20].add(-3.0))  # start partly sparse so several buckets are used
    out = {}
    for name, step in (("dense", flatland.make_step(loss, noise, gd)), ("sparse", make_sparse_step(loss, noise, gd))):
        run = jax.jit(make_runner(step, 1000, every=250,
                                  record=lambda q, s, h: jax.numpy.sum(jax.numpy.any(ctx_z(loss, q) > 0, 0))))
        out[name] = run(jax.random.key(9), p, (), hyper, 0)
    for k in p:
        np.testing.assert_allclose(out["sparse"].params[k], out["dense"].params[k], rtol=0, atol=1e-9)
    assert np.array_equal(out["sparse"].records, out["dense"].records)


def ctx_z(loss, q):
    ctx = loss.extras["relu"]
    return ctx["X"] @ q["W"].T + q["b"]
