"""Fast Gaussian noise with the same law: Philox4x32-10 words, and a normal from each 32-bit word.

Why: a noisy step of the Fig 2 network draws 18,000 normals, and on a CPU JAX's
own ``jax.random.normal`` spends a third of the step on them (~20 ns per normal
here): threefry's 20 rounds per pair of words, two words per float64 uniform,
and XLA's slow float64 ``erf_inv``. Two parts fix it:

* :func:`philox_words` — 32-bit words from the Philox4x32-10 counter-based
  generator (Salmon et al., SC'11, "Parallel random numbers: as easy as 1, 2,
  3"; it passes TestU01's BigCrush) keyed by the step's JAX key: ~3× cheaper
  per word than threefry on this CPU. The block function is checked against
  the Random123 known-answer vectors. :data:`PHILOX` registers the same
  generator as a JAX PRNG implementation (``jax.extend.random.define_prng_impl``),
  so that keys split and fold in with it too (``[run] prng = "philox"``).
* :func:`normal_from_words` — N(0, 1) from one 32-bit word each: the word's
  top bit is the sign and the other 31 bits a two-sided tail probability
  t = (k + ½)/2³¹, and |z| = Φ⁻¹(1 − t/2) is evaluated as √2·x·p(w),
  x = 1 − t, w = −log(t(2 − t)), with two polynomials fitted to erfinv(x)/x
  (the form of Giles 2010, "Approximating the erfinv function"; coefficients
  by least squares, ``benchmarks/normal_draws.py --fit``), in float32
  arithmetic with a logarithm from the float's exponent and a short series
  (XLA's CPU ``log`` and ``cos`` are several times slower).

The law: z takes 2³² values, the quantiles of N(0, 1) at the midpoints of 2³²
equal-probability cells, so every probability is exact to 2⁻³² and the tails
reach 6.3σ (P(|z| > 6.3) = 3·10⁻¹⁰ is what is cut); values are accurate to
float32 rounding (relative error < 4·10⁻⁷, tested against SciPy's erfinv on
the whole range). ``tests/test_normal_draws.py`` tests moments, tail
probabilities, and independence across words, steps and keys.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.extend.random
import jax.numpy as jnp
import numpy as np

__all__ = ["PHILOX", "normal_from_words", "philox4x32", "philox_words", "standard_normal"]

U32 = jnp.uint32
_M0, _M1 = 0xD2511F53, 0xCD9E8D57      # Philox4x32 multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85      # Weyl key increments (golden ratio, √3 − 1)

# erfinv(x)/x as polynomials (highest power first): of w − 2.5 for w < 5, of √w − 3 above
_CENTRAL = (-8.840322646632398e-09, 2.2934722677333503e-08, 4.66717991619817e-07, -3.459400185326868e-06,
            -4.965183293344648e-06, 0.00021833323003538337, -0.0012527400658621693, -0.004177374976596809,
            0.24664028601264856, 1.5014093574259881)
_TAIL = (-2.2074729813440247e-05, 0.00013382983577853123, -0.00026029054362039955, -9.230799245694258e-05,
         0.0014472646887918963, -0.003575922545138112, 0.005699192522382629, -0.00764177723837842,
         0.00944383333929143, 1.0016751972220104, 2.8329768299813374)


def _mulhilo(a, m: int):
    p = a.astype(jnp.uint64) * jnp.uint64(m)
    return (p >> 32).astype(U32), p.astype(U32)


def philox4x32(c0, c1, c2, c3, k0, k1, rounds: int = 10):
    """The Philox4x32 bijection of the 128-bit counter (c0..c3) under the 64-bit key (k0, k1)."""
    k0, k1 = jnp.asarray(k0, U32), jnp.asarray(k1, U32)
    for _ in range(rounds):
        hi0, lo0 = _mulhilo(c0, _M0)
        hi1, lo1 = _mulhilo(c2, _M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = k0 + U32(_W0), k1 + U32(_W1)
    return c0, c1, c2, c3


@functools.partial(jax.jit, static_argnums=1)
def philox_words(key, n: int):
    """n uint32 words from a JAX key (typed or raw key data): Philox4x32-10 of the counters 0 … ⌈n/4⌉ − 1
    under the key's first two words. JAX's own key handling (fold_in, split) stays as it is."""
    data = jax.random.key_data(key) if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key) else key
    return _impl_words(jnp.asarray(data).astype(U32).reshape(-1), n, _BITS)


# Philox as a JAX PRNG implementation: the counter's second word separates what a key is used for, so
# bits, split and fold_in never evaluate Philox on the same counter under the same key.
_BITS, _SPLIT, _FOLD, _SEED = 0, 1, 2, 3


def _impl_words(key, n: int, tag: int):
    """n words: Philox of the counters (i, tag, 0, 0), i = 0 … ⌈n/4⌉ − 1, under the key's words (k0, k1)."""
    m = max(1, -(-n // 4))
    i = jax.lax.iota(U32, m)
    zero = jnp.zeros((m,), U32)
    out = philox4x32(i, jnp.full((m,), tag, U32), zero, zero, key[0], key[1])
    return jnp.stack(out, axis=1).reshape(-1)[:n]


def _impl_seed(seed):
    s = jnp.asarray(seed)
    hi = (s.astype(jnp.uint64) >> 32).astype(U32) if s.dtype.itemsize == 8 else jnp.zeros((), U32)
    return jnp.stack(philox4x32(s.astype(U32), hi, U32(_SEED), U32(0), U32(0), U32(0))[:2])


def _impl_split(key, shape):
    return _impl_words(key, 2 * math.prod(shape), _SPLIT).reshape(*shape, 2)


def _impl_fold_in(key, data):
    return jnp.stack(philox4x32(jnp.asarray(data, U32), U32(_FOLD), U32(0), U32(0), key[0], key[1])[:2])


def _impl_random_bits(key, bit_width: int, shape):
    n = math.prod(shape)
    if bit_width == 64:
        w = _impl_words(key, 2 * n, _BITS).reshape(n, 2)
        return ((w[:, 0].astype(jnp.uint64) << 32) | w[:, 1].astype(jnp.uint64)).reshape(shape)
    dtype = {8: jnp.uint8, 16: jnp.uint16, 32: U32}[bit_width]
    return _impl_words(key, n, _BITS).astype(dtype).reshape(shape)


#: ``jax.random.key(seed, impl=PHILOX)``: keys split, fold in and draw bits with Philox4x32-10 (~3× cheaper
#: per word than threefry here); ``[run] prng = "philox"`` selects it for a run.
PHILOX = jax.extend.random.define_prng_impl(
    key_shape=(2,), seed=_impl_seed, split=_impl_split, random_bits=_impl_random_bits, fold_in=_impl_fold_in,
    name="philox4x32", tag="phx")


def _log_f32(y):
    """Natural log of positive normal float32 values, from the exponent and an atanh series (rel. err. < 1e-7)."""
    bits = jax.lax.bitcast_convert_type(y, jnp.int32)
    e = (bits >> 23) - 127
    m = jax.lax.bitcast_convert_type((bits & 0x7FFFFF) | 0x3F800000, jnp.float32)   # mantissa in [1, 2)
    big = m > np.float32(math.sqrt(2.0))
    m = jnp.where(big, m * np.float32(0.5), m)                                   # now in [0.707, 1.414)
    e = e + big.astype(jnp.int32)
    s = (m - 1) / (m + 1)                                                        # |s| ≤ 0.172
    s2 = s * s
    series = np.float32(2.0) * s * (1 + s2 * (np.float32(1 / 3) + s2 * (np.float32(1 / 5) + s2 * (
        np.float32(1 / 7) + s2 * np.float32(1 / 9)))))
    return e.astype(jnp.float32) * np.float32(math.log(2.0)) + series


def _horner(coef, v):
    p = jnp.full_like(v, np.float32(coef[0]))
    for c in coef[1:]:
        p = p * v + np.float32(c)
    return p


def normal_from_words(words, dtype=jnp.float32):
    """Standard normals from uint32 words, one each (module doc), returned in ``dtype``."""
    k = words & U32(0x7FFFFFFF)
    half, scale = np.float32(0.5), np.float32(2.0**-31)
    t = (k.astype(jnp.float32) + half) * scale                      # two-sided tail probability in (0, 1)
    x = ((U32(0x7FFFFFFF) - k).astype(jnp.float32) + half) * scale    # 1 − t, exact near 0 too
    w = -_log_f32(t * (np.float32(1.0) + x))
    central = _horner(_CENTRAL, w - np.float32(2.5))
    tail = _horner(_TAIL, jnp.sqrt(w) - np.float32(3.0))
    r = np.float32(math.sqrt(2.0)) * x * jnp.where(w < 5, central, tail)
    z = jnp.where((words >> 31) == 1, -r, r)
    return z.astype(dtype)


def standard_normal(key, shape=(), dtype=None):
    """N(0, 1) draws of ``shape`` from ``key`` (module doc for the law and accuracy)."""
    return _standard_normal(key, tuple(shape), jnp.dtype(dtype or jnp.result_type(float)))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _standard_normal(key, shape, dtype):
    return normal_from_words(philox_words(key, math.prod(shape)), dtype).reshape(shape)
