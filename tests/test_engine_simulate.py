"""The compiled loop: sums, records, divergence step, chunked continuation, hyper grids."""
import jax
import jax.numpy as jnp
import pytest

import flatland
from flatland.simulate import ensemble, make_runner


def _setup(noise="update", lr=0.05, sigma=0.01):
    reg = flatland.assemble(entry_points=[]).registry
    loss, nz, learner = reg.create("losses", "fig5a"), reg.create("noise", noise), reg.create("learners", "gd")
    hyper = {"learner": flatland.as_hyper(learner.hyper, {"lr": lr}),
             "noise": flatland.as_hyper(nz.hyper, {"sigma": sigma} if nz.hyper else {})}
    return loss, flatland.make_step(loss, nz, learner), learner, hyper


def test_sums_records_and_no_divergence():
    loss, step, learner, hyper = _setup()
    run = make_runner(step, 60, every=20, accumulate=lambda p, s, h: {"n": jnp.ones(()), "x": p[0]},
                      record=lambda p, s, h: p)
    n = 5
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    p0 = jnp.tile(jnp.array([1.0, 0.0]), (n, 1))
    tr = ensemble(run)(keys, p0, jnp.zeros((n, 0)), hyper, 0)
    assert tr.records.shape == (n, 3, 2) and tr.params.shape == (n, 2)
    assert jnp.all(tr.sums["n"] == 60) and jnp.all(tr.diverged_at == -1)
    assert jnp.allclose(tr.records[:, -1], tr.params)


def test_chunks_continue_exactly_as_one_run():
    loss, step, learner, hyper = _setup()
    key, p0 = jax.random.PRNGKey(3), jnp.array([1.0, 0.0])
    whole = jax.jit(make_runner(step, 40))(key, p0, (), hyper, 0)
    half = jax.jit(make_runner(step, 20))
    first = half(key, p0, (), hyper, 0)
    second = half(key, first.params, first.state, hyper, 20)
    assert not jnp.allclose(first.params, whole.params)
    assert jnp.array_equal(second.params, whole.params)


def test_divergence_step_is_recorded():
    # lr·λ = 2.5·... on fig5a at x=2: curvature 2x² = 8, lr 0.5 → ηλ = 4 > 2 diverges
    loss, step, learner, hyper = _setup(noise="none", lr=0.5)
    run = jax.jit(make_runner(step, 200, every=50))
    tr = run(jax.random.PRNGKey(0), jnp.array([2.0, 0.1]), (), hyper, 1000)
    assert int(tr.diverged_at) >= 1000 and int(tr.diverged_at) < 1200


def test_hyper_grid_is_one_vmap():
    loss, step, learner, hyper = _setup()
    grid = {"learner": {"lr": jnp.array([0.01, 0.02])}, "noise": {"sigma": jnp.array([0.0, 0.01])}}
    run = make_runner(step, 10)
    n = 3
    keys = jnp.broadcast_to(jax.random.split(jax.random.PRNGKey(0), n), (2, n, 2))
    p0 = jnp.broadcast_to(jnp.array([1.0, 0.1]), (2, n, 2))
    tr = ensemble(run, hyper_axis=0)(keys, p0, jnp.zeros((2, n, 0)), grid, 0)
    assert tr.params.shape == (2, n, 2)
    # grid point 0 has no noise: all chains identical
    assert jnp.allclose(tr.params[0], tr.params[0, 0])
    assert not jnp.allclose(tr.params[1], tr.params[1, 0])


def test_bad_step_counts_are_rejected():
    with pytest.raises(ValueError, match="multiple of every"):
        make_runner(lambda *a: a, 10, every=3)
