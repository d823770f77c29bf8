"""The fast normals: Philox known answers, the quantile's accuracy, and the law of the draws.

Statistical rows use N = 2¹⁸ draws; each estimator's standard error is stated beside it and the
tolerance is 4 s.e. (two-sided, p ≈ 6·10⁻⁵ per row for a correct generator; the draws are fixed by the
key, so the test is deterministic).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtri

from flatland.normal_draws import normal_from_words, philox4x32, philox_words, standard_normal

N = 2**18
U32 = jnp.uint32


@pytest.mark.parametrize("counter, key, expected", [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_matches_the_random123_known_answers(counter, key, expected):
    got = philox4x32(*[U32(c) for c in counter], U32(key[0]), U32(key[1]))
    assert tuple(int(g) for g in got) == expected


def test_each_word_maps_to_the_normal_quantile_of_its_cell_to_float32_accuracy():
    rng = np.random.default_rng(0)
    k = np.concatenate([np.arange(20_000), rng.integers(0, 2**31, 100_000), 2**31 - 1 - np.arange(20_000)])
    k = np.sort(k.astype(np.uint32))
    t = (k + 0.5) * 2.0**-31                       # the cell's two-sided tail probability
    exact = ndtri(1 - t / 2)
    for sign in (0, 1):
        z = np.asarray(jax.jit(normal_from_words, static_argnums=1)(jnp.asarray(k | np.uint32(sign << 31)),
                                                                     jnp.float64))
        want = exact if sign == 0 else -exact
        err = np.abs(z - want)
        assert err.max() < 1e-6     # absolute, worst at the 6.3σ tail (an H200 GPU gave 1.09e-6: other rounding)
        big = np.abs(want) > 1e-3
        assert (err[big] / np.abs(want[big])).max() < 4e-7           # relative: float32 rounding
        # monotone in the word up to that rounding: a cell's value never passes a neighbour's by more
        back = np.diff(z) if sign == 0 else -np.diff(z)
        assert back.max() < 1e-6
    assert exact[0] == pytest.approx(6.3379, abs=1e-4)               # the tail reached


@pytest.fixture(scope="module")
def draws():
    return np.asarray(standard_normal(jax.random.PRNGKey(2026), (N,), jnp.float64))


def test_moments_are_those_of_a_standard_normal(draws):
    z = draws
    m, v = z.mean(), z.var()
    skew, exkurt = stats.skew(z), stats.kurtosis(z)
    for value, target, se in ((m, 0.0, 1 / math.sqrt(N)), (v, 1.0, math.sqrt(2 / N)),
                              (skew, 0.0, math.sqrt(6 / N)), (exkurt, 0.0, math.sqrt(24 / N))):
        assert abs(value - target) < 4 * se, (value, target, se)


@pytest.mark.parametrize("c", [1.0, 2.0, 3.0, 4.0, 4.5])
def test_tail_probabilities_match_the_normal_law(draws, c):
    p = 2 * stats.norm.sf(c)
    seen = np.mean(np.abs(draws) > c)
    assert abs(seen - p) < 4 * math.sqrt(p * (1 - p) / N), (c, seen, p)


def test_distribution_passes_kolmogorov_smirnov(draws):
    assert stats.kstest(draws, "norm").pvalue > 1e-3


def _r(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def test_draws_are_uncorrelated_across_words_steps_and_keys(draws):
    tol = 4 / math.sqrt(N)                              # s.e. of a correlation of independent draws: 1/√N
    for lag in (1, 2, 3, 4, 5):                         # within and across Philox's 4-word blocks
        assert abs(_r(draws[:-lag], draws[lag:])) < tol
        assert abs(_r(draws[:-lag] ** 2, draws[lag:] ** 2)) < tol * math.sqrt(2) * 2   # squares: s.e. √2/√N·…
    key = jax.random.PRNGKey(2026)
    step = [np.asarray(standard_normal(jax.random.fold_in(key, t), (N,), jnp.float64)) for t in (7, 8)]
    assert abs(_r(step[0], step[1])) < tol              # consecutive steps of one chain
    a, b = jax.random.split(key)
    assert abs(_r(np.asarray(standard_normal(a, (N,))), np.asarray(standard_normal(b, (N,))))) < tol


def test_same_key_same_draws_any_shape_and_chunking():
    key = jax.random.PRNGKey(5)
    flat = np.asarray(standard_normal(key, (24,)))
    np.testing.assert_array_equal(np.asarray(standard_normal(key, (4, 6))).ravel(), flat)
    words = np.asarray(philox_words(jax.random.key(5), 24))            # typed keys give the same words
    np.testing.assert_array_equal(words, np.asarray(philox_words(key, 24)))
    assert np.asarray(standard_normal(key, (3,), jnp.float32)).dtype == np.float32


def test_philox_keys_split_fold_and_draw_like_jax_keys():
    from flatland.normal_draws import PHILOX

    key = jax.random.key(2026, impl=PHILOX)
    a, b = jax.random.split(key)
    assert not np.array_equal(jax.random.key_data(a), jax.random.key_data(b))
    folded = {tuple(np.asarray(jax.random.key_data(jax.random.fold_in(key, t)))) for t in range(100)}
    assert len(folded) == 100
    assert jax.random.key_data(jax.random.key(2**40 + 1, impl=PHILOX)).tolist() != \
        jax.random.key_data(jax.random.key(1, impl=PHILOX)).tolist()          # 64-bit seeds use both words
    for width, dtype in ((8, jnp.uint8), (16, jnp.uint16), (32, jnp.uint32), (64, jnp.uint64)):
        bits = jax.random.bits(key, (5, 3), dtype)
        assert bits.shape == (5, 3) and bits.dtype == dtype
    # children of a split draw independent standard normals (JAX's own normal on Philox bits)
    za = np.asarray(jax.random.normal(a, (N,)))
    zb = np.asarray(jax.random.normal(b, (N,)))
    assert abs(_r(za, zb)) < 4 / math.sqrt(N)
    assert abs(za.mean()) < 4 / math.sqrt(N) and abs(za.var() - 1) < 4 * math.sqrt(2 / N)
    np.testing.assert_array_equal(za, np.asarray(jax.random.normal(a, (N,))))   # same key, same draws
