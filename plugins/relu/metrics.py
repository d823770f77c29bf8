"""Sparsity, place-field and loss metrics of the network, as pure JAX for in-loop logging.

What: every function takes ``(params, ctx)`` with ``ctx = loss.extras["relu"]``
(inputs, targets, positions, bin indices, shuffles — all fixed at assembly) and
returns a scalar or an array; ``make_record(ctx, names)`` bundles a chosen set
into the ``record`` callback of :func:`flatland.make_runner`, so they are
computed inside the compiled loop every k steps. ``ratemap_correlation`` works on
stored rate-map snapshots (Fig 2E) on the host.

Definitions (Ratzon, Derdikman & Barak, eLife 2024):
* ``loss_norm`` — mean squared error / Var(Y), Var(Y) = mean over all elements of
  (Y − column mean)² (the paper's normaliser).
* ``active_fraction`` — mean of the (inputs × units) matrix [z > 0].
* ``active_units`` — fraction of units active on at least one input.
* rate maps — ``n_bins`` (default 100) bins over the signed position
  direction·(position − start) ∈ [−L, L]: the two running directions are separate
  positions, ~50 bins each as in the public code. Rate = mean activation per bin
  (unvisited bins 0). For SI, rates are max(activation, 0) (SI needs rates ≥ 0).
* ``si`` — Skaggs information Σ_i p_i (r_i/r̄) log₂(r_i/r̄) in bits, mean over place
  cells: units with SI > ``place_threshold`` (0.01 bits, the public code's rule).
  With T = 150 samples in 100 bins SI is biased upward.
* ``si_corrected`` — mean over active units of SI − mean SI of the same unit under
  ``n_shuffles`` fixed random permutations of time against position (the bias
  estimate); ≈ 0 for a unit without spatial tuning.
* ``si_probe`` / ``si_probe_corrected`` — mean SI, raw and shuffle-corrected, over the units active on
  the training inputs (``si`` averages over units with SI > ``place_threshold`` instead), with the rate
  maps taken on a probe walk: the training walk continued for ``probe_samples`` more steps in the same
  environment (default 150 per bin; with one running direction only half the bins are visited), inputs
  normalised with the training set's constants. The responses are a fixed function of the inputs, so
  with ~150 visits a bin the raw value is close to the map's exact SI (on a width-50 corridor net, dense
  and with its biases lowered by 1.2: 1.111 and 2.971 bits at 15,000 samples, 1.112 and 2.968 at
  200,000); the shuffle term (0.01 and 0.31 bits there, growing as units sparsen) overstates that bias,
  so the corrected value errs low, more for sparser units. Built on first use (once per loss); it holds
  the probe's activity, 15,000 × n_hid per net (~180 MB per net at width 500 in float64).
* ``place_cells`` — number of units with SI > ``place_threshold`` (the public code's
  rule). With T = 150 samples in 100 bins every active unit's SI exceeds 0.01 bits
  by sampling bias alone, so this count equals the active-unit count: it cannot
  show place fields forming, only units dying.
* ``place_cells_significant`` — units whose SI also beats all ``n_shuffles`` shuffles
  of time against position (a per-unit permutation test at p < 1/(K+1)): what
  can show place fields, to the resolution that K shuffles allow.
* ``hess_trace`` — tr H = 2κ‖J‖_F², from the network's structure (no eigensolve).
"""
from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp

from .network import active_matrix, forward, hidden

SCALARS = ("loss_norm", "active_fraction", "active_units", "si", "si_corrected", "place_cells",
           "place_cells_significant")


def binning(pos, direction, track, n_bins=100):
    """Bin index (T,) of each sample on the signed-position axis [−L, L]."""
    lo, hi = track
    L = hi - lo
    s = np.asarray(direction) * (np.asarray(pos) - lo)
    idx = np.floor((s + L) / (2 * L) * n_bins).astype(int)
    return np.clip(idx, 0, n_bins - 1)


def place_context(pos, direction, track, n_bins=100, n_shuffles=10, shuffle_seed=12345, place_threshold=0.01):
    """Fixed binning and shuffles for rate maps and SI (host arrays, built once)."""
    from flatland import UserError

    def whole(name, v, least):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise UserError(f"{name} must be a whole number ≥ {least}, got {v!r}")
    whole("n_bins", n_bins, 2)
    whole("n_shuffles", n_shuffles, 0)
    whole("shuffle_seed", shuffle_seed, 0)
    if isinstance(place_threshold, bool) or not isinstance(place_threshold, (int, float)) or not place_threshold >= 0:
        raise UserError(f"place_threshold must be a number ≥ 0 (bits of spatial information), got {place_threshold!r}")
    idx = binning(pos, direction, track, n_bins)
    rng = np.random.default_rng(shuffle_seed)
    shuffles = np.stack([rng.permutation(idx) for _ in range(n_shuffles)]) if n_shuffles else np.zeros((0, idx.size), int)
    return {"bin_idx": idx, "shuffle_idx": shuffles, "n_bins": int(n_bins), "place_threshold": float(place_threshold)}


def loss_norm(params, ctx):
    r = forward(params, ctx["X"], ctx["spec"]) - ctx["Y"]
    return jnp.mean(r * r) / ctx["var_y"]


def active_fraction(params, ctx):
    return jnp.mean(active_matrix(params, ctx["X"]).astype(jnp.float64))


def active_units(params, ctx):
    return jnp.mean(jnp.any(active_matrix(params, ctx["X"]), axis=0).astype(jnp.float64))


def _rates(h, idx, n_bins):
    """Rate maps (n_hid, n_bins) and occupancy probabilities (n_bins,)."""
    counts = jax.ops.segment_sum(jnp.ones(idx.shape, h.dtype), idx, n_bins)
    sums = jax.ops.segment_sum(h, idx, n_bins)                # (n_bins, n_hid)
    maps = sums / jnp.maximum(counts, 1)[:, None]
    return maps.T, counts / idx.shape[0]


def _skaggs(maps, p):
    """Skaggs SI (bits) per unit; NaN for units with zero mean rate."""
    mean = maps @ p
    ratio = maps / jnp.where(mean > 0, mean, 1.0)[:, None]
    terms = jnp.where(ratio > 0, ratio * jnp.log2(jnp.where(ratio > 0, ratio, 1.0)), 0.0)
    return jnp.where(mean > 0, terms @ p, jnp.nan)


def rate_maps(params, ctx):
    """Rate maps (n_hid, n_bins) of the hidden units (activation, not clipped)."""
    h = hidden(params, ctx["X"], ctx["spec"])
    return _rates(h, jnp.asarray(ctx["place"]["bin_idx"]), ctx["place"]["n_bins"])[0]


def unit_si(params, ctx):
    """Skaggs SI per unit (n_hid,), NaN where the unit never fires."""
    h = jnp.maximum(hidden(params, ctx["X"], ctx["spec"]), 0)
    maps, p = _rates(h, jnp.asarray(ctx["place"]["bin_idx"]), ctx["place"]["n_bins"])
    return _skaggs(maps, p)


def si(params, ctx):
    s = unit_si(params, ctx)
    place = s > ctx["place"]["place_threshold"]
    return jnp.sum(jnp.where(place, s, 0.0)) / jnp.sum(place)


def place_cells(params, ctx):
    return jnp.sum(unit_si(params, ctx) > ctx["place"]["place_threshold"]).astype(jnp.float64)


def _si_and_shuffles_of(h, place, shuffles=True):
    """(SI per unit (n_hid,), SI per unit under each fixed shuffle (K, n_hid)) of activity ``h`` (T, n_hid).

    The shuffles run one after another (``lax.map``): under ``vmap`` a scatter with batched indices
    stores h once per shuffle, 5.8 GB for a 15,000-sample probe at width 500 with 8 seeds."""
    s = _skaggs(*_rates(h, jnp.asarray(place["bin_idx"]), place["n_bins"]))
    sh = jnp.asarray(place["shuffle_idx"])
    if sh.shape[0] == 0 or not shuffles:
        return s, jnp.zeros((0,) + s.shape, s.dtype)
    return s, jax.lax.map(lambda i: _skaggs(*_rates(h, i, place["n_bins"])), sh)


def _si_and_shuffles(params, ctx):
    return _si_and_shuffles_of(jnp.maximum(hidden(params, ctx["X"], ctx["spec"]), 0), ctx["place"])


def _unit_corrected(s, s_sh):
    """Per unit: SI minus its mean SI under the shuffles (SI itself when there are none)."""
    return s - jnp.mean(s_sh, axis=0) if s_sh.shape[0] else s


def _corrected(s, s_sh):
    return jnp.nanmean(_unit_corrected(s, s_sh))


def si_corrected(params, ctx):
    return _corrected(*_si_and_shuffles(params, ctx))


def probe_unit_si(params, ctx, shuffles=True):
    """SI per unit and under shuffles on the probe walk, NaN for units inactive on the training inputs (a
    unit silent there is dead however it answers the probe's slightly different inputs)."""
    probe = ctx["probe"]()
    h = jnp.maximum(hidden(params, jnp.asarray(probe["X"]), ctx["spec"]), 0)
    s, s_sh = _si_and_shuffles_of(h, probe["place"], shuffles)
    active = jnp.any(active_matrix(params, ctx["X"]), axis=0)
    return jnp.where(active, s, jnp.nan), s_sh


def si_probe(params, ctx):
    """Mean Skaggs SI (bits) on the probe walk over the units active on the training inputs."""
    return jnp.nanmean(probe_unit_si(params, ctx, shuffles=False)[0])


def probe_unit_si_corrected(params, ctx):
    """Per unit, the probe's SI minus its mean under the probe's time shuffles; NaN where inactive on the
    training inputs."""
    return _unit_corrected(*probe_unit_si(params, ctx))


def si_probe_corrected(params, ctx):
    """``si_probe`` minus each unit's mean SI under the probe's time shuffles."""
    return jnp.nanmean(probe_unit_si_corrected(params, ctx))


def probe_context(walk, track, dtype, **place_options):
    """Inputs, binning and shuffles of a probe walk ``(X, position, direction)`` (see ``tasks.probe_walk``),
    binned as the training set is (``place_options`` as for :func:`place_context`)."""
    X, pos, direction = walk
    # host arrays: the context is cached, and a JAX array made while tracing would leak the trace
    return {"X": np.asarray(X, dtype), "place": place_context(pos, direction, track, **place_options)}


def place_cells_significant(params, ctx):
    """Units whose SI exceeds the threshold and every one of their K shuffled SIs (p < 1/(K+1) each)."""
    s, s_sh = _si_and_shuffles(params, ctx)
    beats = jnp.all(s[None, :] > s_sh, axis=0) if s_sh.shape[0] else jnp.ones_like(s, bool)
    return jnp.sum((s > ctx["place"]["place_threshold"]) & beats).astype(jnp.float64)


def hess_trace(params, ctx):
    """tr H: exact for ReLU (the residual term has zero diagonal), = tr of Gauss–Newton otherwise."""
    from .hessian import gn_trace
    return gn_trace(params, ctx["X"], ctx["spec"], ctx["kappa"])


FUNCS = {
    "loss_norm": loss_norm, "active_fraction": active_fraction, "active_units": active_units,
    "si": si, "si_corrected": si_corrected, "place_cells": place_cells,
    "place_cells_significant": place_cells_significant, "si_probe": si_probe,
    "si_probe_corrected": si_probe_corrected, "hess_trace": hess_trace,
}


def make_record(ctx, names=SCALARS):
    """``record(params, state, hyper) -> {name: value}`` for make_runner (pure JAX)."""
    fns = {n: FUNCS[n] for n in names}

    def record(params, state, hyper):
        return {n: jnp.asarray(f(params, ctx), jnp.float64) for n, f in fns.items()}

    return record


def smooth_maps(maps, sigma_bins):
    """Gaussian-smooth rate maps along bins (non-periodic, as the public code's display maps)."""
    if sigma_bins <= 0:
        return np.asarray(maps)
    from scipy.ndimage import gaussian_filter1d
    return gaussian_filter1d(np.asarray(maps, np.float64), sigma_bins, axis=-1)


def ratemap_correlation(maps, place, sigma_bins=6.0):
    """Fig 2E: C[a, b] = mean Pearson r between each unit's maps at snapshots a and b,
    over units that are place cells at both; maps (S, n_hid, n_bins), place (S, n_hid) bool.
    Maps are smoothed with σ = ``sigma_bins`` (the public code uses 0.06·n_bins). NaN where no unit qualifies.
    """
    m = smooth_maps(maps, sigma_bins)
    m = m - m.mean(-1, keepdims=True)
    norm = np.linalg.norm(m, axis=-1)
    S = m.shape[0]
    C = np.full((S, S), np.nan)
    for a in range(S):
        for b in range(S):
            ok = place[a] & place[b] & (norm[a] > 0) & (norm[b] > 0)
            if ok.any():
                r = np.sum(m[a][ok] * m[b][ok], -1) / (norm[a][ok] * norm[b][ok])
                C[a, b] = r.mean()
    return C
