"""The compiled simulation loop: ``jit(vmap(scan))`` over chains and hyperparameters.

``make_runner(step, n_steps, every, accumulate, record)`` builds a pure function

    run(key, params, state, hyper, t0) -> Trajectory

that performs ``n_steps`` steps of ``step(key, params, state, hyper)`` inside
one ``lax.scan`` (an outer scan over ``n_steps // every`` blocks and an inner
one over ``every`` steps). Per-step estimator terms are *summed* in the carry
(``accumulate(params, state, hyper) -> pytree``, evaluated before each step),
and ``record(params, state, hyper) -> pytree`` is logged once per block, after
its last step (or after ``record_at`` of its steps), so nothing returns to
Python per step. The first step at which
params stop being finite is kept in ``diverged_at`` (−1 if never).
The key of step ``t`` is ``fold_in(key, t)``: a run cut into chunks (``t0`` =
steps done so far, same ``key``) is bit-for-bit the uninterrupted run.

``ensemble(run, hyper_axis=None)`` vmaps ``run`` over chains (keys, params,
state) and, with ``hyper_axis=0``, over a grid of hyperparameters too, then
jits it. ``t0`` lets a long run continue in equal chunks without recompiling.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp


class Trajectory(NamedTuple):
    """What one chain returns: final params/state, sums, block records, divergence step."""

    params: Any
    state: Any
    sums: Any
    records: Any
    diverged_at: jax.Array


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def make_runner(
    step: Callable,
    n_steps: int,
    every: Optional[int] = None,
    accumulate: Optional[Callable] = None,
    record: Optional[Callable] = None,
    record_at: Optional[int] = None,
) -> Callable:
    """Build ``run(key, params, state, hyper, t0=0) -> Trajectory`` (pure, unjitted).

    ``n_steps`` must be a multiple of ``every`` (default: ``every = n_steps``,
    one record at the end). ``record_at`` (0 ≤ record_at < every) records
    after that many steps of each block instead of after its last step;
    ``every // 2`` centres the records in their blocks, so that averages of
    records estimate the same time average as the per-step sums.
    """
    every = n_steps if every is None else int(every)
    if n_steps <= 0 or every <= 0 or n_steps % every:
        raise ValueError(f"n_steps ({n_steps}) must be a positive multiple of every ({every})")
    if record_at is not None and not 0 <= int(record_at) < every:
        raise ValueError(f"record_at ({record_at}) must be in [0, every) = [0, {every})")
    n_blocks = n_steps // every

    def inner(carry, _):
        key, params, state, sums, hyper, t, div = carry
        k_step = jax.random.fold_in(key, t)
        if accumulate is not None:
            sums = jax.tree_util.tree_map(jnp.add, sums, accumulate(params, state, hyper))
        params, state, _info = step(k_step, params, state, hyper)
        bad = jnp.logical_and(div < 0, jnp.logical_not(_all_finite(params)))
        div = jnp.where(bad, t, div)
        return (key, params, state, sums, hyper, t + 1, div), None

    def outer(carry, _):
        first = every if record_at is None else int(record_at)
        if first:
            carry, _ = jax.lax.scan(inner, carry, None, length=first)
        _key, params, state, _sums, hyper, _t, _div = carry
        rec = record(params, state, hyper) if record is not None else ()
        if every - first:
            carry, _ = jax.lax.scan(inner, carry, None, length=every - first)
        return carry, rec

    def run(key, params, state, hyper, t0=0):
        if accumulate is not None:
            zeros = jax.tree_util.tree_map(jnp.zeros_like, jax.eval_shape(accumulate, params, state, hyper))
        else:
            zeros = ()
        t0 = jnp.asarray(t0, dtype=jnp.int64)
        carry = (key, params, state, zeros, hyper, t0, jnp.asarray(-1, dtype=jnp.int64))
        carry, records = jax.lax.scan(outer, carry, None, length=n_blocks)
        _key, params, state, sums, _hyper, _t, div = carry
        return Trajectory(params, state, sums, records, div)

    return run


def ensemble(run: Callable, hyper_axis: Optional[int] = None) -> Callable:
    """``jit(vmap(run))`` over chains; with ``hyper_axis=0`` also over a hyper grid.

    Chains: ``key``, ``params`` and ``state`` carry a leading chain axis. With a
    grid, every hyper leaf has a leading grid axis and the chain arrays carry
    ``(grid, chains, ...)``.
    """
    over_chains = jax.vmap(run, in_axes=(0, 0, 0, None, None))
    if hyper_axis is None:
        return jax.jit(over_chains)
    return jax.jit(jax.vmap(over_chains, in_axes=(0, 0, 0, hyper_axis, None)))
