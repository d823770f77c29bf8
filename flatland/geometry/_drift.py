"""Drift between two sessions of one stimulus group: vector, γ, Γ, PC-resolved.

Definitions follow Aitken et al. (PLOS Comput. Biol. 2022). ``early`` is a
:class:`GroupPCA` of the earlier session; the later session enters as its raw
responses or its PCA. Every quantity here is also what the resampling control
computes when "later" is an independent set of noisy passes at the same
weights (Δt = 0), see :mod:`flatland.geometry.analysis`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ._pca import GroupPCA, variance_along


def drift_vector(early_mean, late_mean) -> np.ndarray:
    """d = x̄(later) − x̄(earlier)."""
    return np.asarray(late_mean, dtype=float) - np.asarray(early_mean, dtype=float)


def angle_deg(u, v) -> float:
    """Angle between two vectors in degrees, in [0, 180]; NaN if one is zero.

    Computed as 2·atan2(‖û − v̂‖, ‖û + v̂‖), which equals arccos of the cosine
    but stays accurate near 0° and 180°.
    """
    u, v = np.asarray(u, dtype=float).ravel(), np.asarray(v, dtype=float).ravel()
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return float("nan")
    u, v = u / nu, v / nv
    return float(np.degrees(2 * np.arctan2(np.linalg.norm(u - v), np.linalg.norm(u + v))))


def relative_drift(early_mean, late_mean) -> float:
    """‖d‖ / ‖x̄(earlier)‖: drift size relative to the earlier mean response."""
    d = drift_vector(early_mean, late_mean)
    return float(np.linalg.norm(d) / np.linalg.norm(early_mean))


def gamma(early: GroupPCA, d) -> float:
    """Drift-in-variation ratio γ = Σ_{i≤⌈D⌉} (w_i·d)² / ‖d‖² (earlier PCs). NaN for d = 0."""
    d = np.asarray(d, dtype=float)
    dd = float(d @ d)
    if dd == 0:
        return float("nan")
    proj = early.space.T @ d
    return float(proj @ proj / dd)


def gamma_chance(early: GroupPCA) -> float:
    """γ of a randomly oriented drift: ⌈D⌉ / n."""
    return early.k / early.n


def overlap(a: GroupPCA, b: GroupPCA) -> float:
    """Variational-space overlap Γ = Σ_{I,J} (w_I·w'_J)² / min(⌈D⌉, ⌈D'⌉), in [0, 1]."""
    k = min(a.k, b.k)
    if k == 0:
        return float("nan")
    M = a.space.T @ b.space
    return float(np.sum(M * M) / k)


def overlap_chance(a: GroupPCA, b: GroupPCA) -> float:
    """Γ of randomly oriented variational spaces: max(⌈D⌉, ⌈D'⌉) / n."""
    return max(a.k, b.k) / a.n


@dataclasses.dataclass(frozen=True)
class PCResolved:
    """Drift resolved along the earlier session's PCs, one entry per PC i.

    ``v`` variance ratio v_i; ``along`` |d·w_i|/‖d‖; ``cos`` the signed
    cosine d·w_i/‖d‖ (PCs oriented along the mean, see ``_pca``); ``angle``
    angle(d, w_i) in degrees from the signed cosine (> 90°: drift points
    against w_i); ``var_ratio`` the later variance ratio along w_i (later
    variance along w_i over the later total variance), to compare with v_i;
    ``retained`` later variance along w_i / earlier variance along w_i.
    """

    v: np.ndarray
    along: np.ndarray
    cos: np.ndarray
    angle: np.ndarray
    var_ratio: np.ndarray
    retained: np.ndarray


def pc_resolved(early: GroupPCA, late_X, d=None, n_pcs: int | None = None) -> PCResolved:
    """PC-resolved drift of group responses ``late_X`` (m', n) against ``early``'s PCs."""
    late_X = np.asarray(late_X, dtype=float)
    if d is None:
        d = drift_vector(early.mean, late_X.mean(axis=0))
    r = early.components.shape[1] if n_pcs is None else min(n_pcs, early.components.shape[1])
    W = early.components[:, :r]
    nd = np.linalg.norm(d)
    cos = (W.T @ d) / nd if nd > 0 else np.full(r, np.nan)
    late_var = variance_along(late_X, W)
    late_total = float(np.sum(late_X.var(axis=0, ddof=1)))
    return PCResolved(
        v=early.ratios[:r].copy(), along=np.abs(cos), cos=cos,
        angle=np.degrees(np.arccos(np.clip(cos, -1, 1))),
        var_ratio=late_var / late_total if late_total > 0 else np.full(r, np.nan),
        retained=late_var / early.variances[:r],
    )


@dataclasses.dataclass(frozen=True)
class LinearFit:
    """Least-squares line y ≈ slope·x + intercept, Pearson r and the slope's standard error."""

    slope: float
    intercept: float
    r: float
    slope_se: float
    n: int


def linear_fit(x, y) -> LinearFit:
    """Ordinary least squares of y on x, ignoring NaN pairs."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = x.size
    if n < 3 or np.ptp(x) == 0:
        return LinearFit(float("nan"), float("nan"), float("nan"), float("nan"), n)
    xm, ym = x.mean(), y.mean()
    sxx, sxy = np.sum((x - xm) ** 2), np.sum((x - xm) * (y - ym))
    slope = sxy / sxx
    resid = y - ym - slope * (x - xm)
    syy = np.sum((y - ym) ** 2)
    r = sxy / np.sqrt(sxx * syy) if syy > 0 else float("nan")
    se = np.sqrt(np.sum(resid**2) / (n - 2) / sxx)
    return LinearFit(float(slope), float(ym - slope * xm), float(r), float(se), n)
