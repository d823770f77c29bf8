"""Benchmark: chain-steps per second of the valley simulator vs plain NumPy loops (not a test).

    .venv/bin/python benchmarks/valley_sim.py [--quick]

The task: GD with isotropic update noise (η = 0.05, σ = 0.01) on the Fig 5A
valley L = (x·y)², from (1, 0). Three implementations, in the same run:

* ``flatland``: the compiled loop (``make_runner`` + ``ensemble``, i.e.
  jit(vmap(scan))), bare and with the Rao–Blackwellised drift summed in the
  loop as the checks run it, and bare with Philox keys and the noise's
  ``draws = "fast"`` (``bare, phx``); compilation timed separately;
* ``numpy loop``: a Python loop over chains, each stepping a 2-vector with
  NumPy (what one writes first);
* ``numpy vectorised``: one NumPy array op per step over all chains (the
  strongest simple baseline; printed for context).

Rates are chain-steps per second of wall time after compilation (JAX) and
over a fixed amount of work sized to take about a second.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import flatland
from flatland.estimators import step_moments
from flatland.normal_draws import PHILOX
from flatland.simulate import ensemble, make_runner

ETA, SIGMA = 0.05, 0.01


def flatland_rate(n_chains: int, n_steps: int, rb: bool, draws: str = "exact", impl=None):
    reg = flatland.assemble().registry
    loss, gd = reg.create("losses", "fig5a"), reg.create("learners", "gd")
    noise = reg.create("noise", "update", draws=draws)
    step = flatland.make_step(loss, noise, gd)
    hyper = {"learner": flatland.as_hyper(gd.hyper, {"lr": ETA}), "noise": flatland.as_hyper(noise.hyper, {"sigma": SIGMA})}
    acc = None
    if rb:
        mom = step_moments(loss, noise, gd)
        acc = lambda p, s, h: {"rb": mom(p, s, h)[0]}
    sim = ensemble(make_runner(step, n_steps, accumulate=acc))
    keys = jax.random.split(jax.random.key(0, impl=impl) if impl else jax.random.PRNGKey(0), n_chains)
    p0 = jnp.tile(jnp.array([1.0, 0.0]), (n_chains, 1))
    s0 = jax.vmap(lambda p: gd.init(p, hyper["learner"]))(p0)
    t = time.perf_counter()
    compiled = sim.lower(keys, p0, s0, hyper, 0).compile()
    t_compile = time.perf_counter() - t
    jax.block_until_ready(compiled(keys, p0, s0, hyper, 0))  # warm
    t = time.perf_counter()
    out = compiled(keys, p0, s0, hyper, 0)
    jax.block_until_ready(out)
    dt = time.perf_counter() - t
    assert int(out.diverged_at.max()) < 0
    return n_chains * n_steps / dt, t_compile


def numpy_loop_rate(n_chains: int, n_steps: int):
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(n_chains):
        th = np.array([1.0, 0.0])
        for _ in range(n_steps):
            x, y = th
            g = np.array([2 * x * y * y, 2 * x * x * y])  # ∇(x·y)²
            th = th - ETA * g + SIGMA * rng.standard_normal(2)
    return n_chains * n_steps / (time.perf_counter() - t)


def numpy_vectorised_rate(n_chains: int, n_steps: int):
    rng = np.random.default_rng(0)
    th = np.tile([1.0, 0.0], (n_chains, 1))
    t = time.perf_counter()
    for _ in range(n_steps):
        x, y = th[:, 0], th[:, 1]
        g = np.stack([2 * x * y * y, 2 * x * x * y], axis=1)
        th = th - ETA * g + SIGMA * rng.standard_normal((n_chains, 2))
    return n_chains * n_steps / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of the work (a smoke run)")
    args = ap.parse_args()
    q = 10 if args.quick else 1
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"jax {jax.__version__} on {jax.devices()[0].platform}, float64")
    sizes = {1: 20000 // q, 1000: 2000 // q, 20000: 500 // q}
    np_steps = {1: 20000 // q, 1000: 40 // q or 4, 20000: 2 // q or 1}  # the Python loop is slow: less work
    header = f"{'chains':>7} | {'flatland bare':>14} {'flatland +RB':>14} {'bare, phx':>11} {'(compile s)':>11} | " \
             f"{'numpy loop':>11} {'numpy vect.':>12} | {'x loop':>8} {'x vect.':>8} {'phx x vect.':>12}"
    print(header)
    print("-" * len(header))
    for n, steps in sizes.items():
        bare, t_c = flatland_rate(n, steps, rb=False)
        rb, _ = flatland_rate(n, steps, rb=True)
        fast, _ = flatland_rate(n, steps, rb=False, draws="fast", impl=PHILOX)
        loop = numpy_loop_rate(n, np_steps[n])
        vect = numpy_vectorised_rate(n, steps)
        print(f"{n:>7} | {bare:>14.3g} {rb:>14.3g} {fast:>11.3g} {t_c:>11.2f} | {loop:>11.3g} {vect:>12.3g} | "
              f"{bare / loop:>8.3g} {bare / vect:>8.3g} {fast / vect:>12.3g}")
    print("rates in chain-steps per second (wall); 'x loop' = flatland bare / numpy loop over chains")


if __name__ == "__main__":
    main()
