"""Benchmark: ways of drawing one Fig 2 step's 18,000 standard normals, side by side (not a test).

    .venv/bin/python benchmarks/normal_draws.py [--fit]

Each candidate draws P normals per step inside a compiled ``lax.scan`` of S
steps (the step key is ``fold_in(key, t)``, as in flatland's loop) and adds
them to a carry, so nothing is optimised away; the figure is the best of 7
repetitions, in µs per step and ns per normal. Candidates:

* ``jax.random.normal`` float64 / float32 cast to float64 (threefry bits,
  XLA's ``erf_inv``): what ``[noise] draws = "exact"`` / ``"float32"`` do;
* threefry bits + flatland's quantile (``normal_from_words``);
* Philox words + flatland's quantile: ``draws = "fast"``;
* the words alone (threefry, Philox), to split generator from transform;
* NumPy's ``standard_normal`` (ziggurat, float64) on the host, for context.

``--fit`` re-derives the quantile's polynomial coefficients (least squares on
a fine grid, as stored in ``flatland/normal_draws.py``) and prints their
largest relative error against SciPy's ``erfinv``.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from flatland.normal_draws import normal_from_words, philox_words, standard_normal

P, S = 18_000, 200


def per_step_us(draw) -> float:
    def run(key, x):
        def body(x, t):
            return x + draw(jax.random.fold_in(key, t)).astype(jnp.float64), None
        return jax.lax.scan(body, x, jnp.arange(S))[0]

    key, x = jax.random.PRNGKey(1), jnp.zeros(P)
    compiled = jax.jit(run).lower(key, x).compile()
    jax.block_until_ready(compiled(key, x))
    best = float("inf")
    for _ in range(7):
        t = time.perf_counter()
        jax.block_until_ready(compiled(key, x))
        best = min(best, time.perf_counter() - t)
    return best / S * 1e6


CANDIDATES = {
    "jax.random.normal float64 (draws=exact)": lambda k: jax.random.normal(k, (P,), jnp.float64),
    "jax.random.normal float32 (draws=float32)": lambda k: jax.random.normal(k, (P,), jnp.float32),
    "threefry words + flatland quantile": lambda k: normal_from_words(jax.random.bits(k, (P,), jnp.uint32)),
    "Philox words + flatland quantile (draws=fast)": lambda k: standard_normal(k, (P,), jnp.float64),
    "threefry words only": lambda k: jax.random.bits(k, (P,), jnp.uint32),
    "Philox words only": lambda k: philox_words(k, P),
}


def numpy_us() -> float:
    rng = np.random.default_rng(0)
    best = float("inf")
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(S):
            rng.standard_normal(P)
        best = min(best, time.perf_counter() - t)
    return best / S * 1e6


def fit() -> None:
    """The two polynomials of erfinv(x)/x (module doc of flatland.normal_draws) and their accuracy."""
    from scipy.special import erfinv

    def target(w):
        x = np.sqrt(-np.expm1(-w))
        return erfinv(x) / x

    tmin = 0.5 * 2.0**-31
    wmax = -np.log(tmin * (2 - tmin))
    w1 = np.linspace(1e-12, 5.0, 400_001)
    c1 = np.polyfit(w1 - 2.5, target(w1), 9)
    s2 = np.linspace(np.sqrt(5.0), np.sqrt(wmax) + 0.01, 400_001)
    c2 = np.polyfit(s2 - 3.0, target(s2**2), 10)
    e1 = np.max(np.abs(np.polyval(c1, w1 - 2.5) / target(w1) - 1))
    e2 = np.max(np.abs(np.polyval(c2, s2 - 3.0) / target(s2**2) - 1))
    print("_CENTRAL =", tuple(float(f"{c:.17g}") for c in c1), f"# max rel. error {e1:.2g} (float64)")
    print("_TAIL =", tuple(float(f"{c:.17g}") for c in c2), f"# max rel. error {e2:.2g} (float64)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="re-derive the quantile's coefficients instead")
    args = ap.parse_args()
    if args.fit:
        return fit()
    jax.config.update("jax_enable_x64", True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}, "
          f"{P} normals per step, best of 7 × {S} steps")
    base = None
    for name, draw in CANDIDATES.items():
        us = per_step_us(draw)
        base = base or us
        print(f"{name:48s} {us:8.1f} µs/step {1e3 * us / P:6.1f} ns/normal   {base / us:5.2f}× draws=exact")
    us = numpy_us()
    print(f"{'numpy standard_normal float64 (host, context)':48s} {us:8.1f} µs/step {1e3 * us / P:6.1f} ns/normal")


if __name__ == "__main__":
    main()
