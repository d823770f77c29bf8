"""Per-stimulus-group PCA: variance ratios, participation ratio D, variational space.

A *stimulus group* is an ``(m, n)`` array: ``m`` response vectors of ``n``
neurons to one stimulus in one session (Aitken et al., PLOS Comput. Biol. 2022).
PCA is taken around the group mean. Principal directions are *oriented*: each
``w_i`` is flipped so that ``w_i · x̄ ≥ 0`` (it points away from the origin
along the mean response). PCs have no sign of their own; this convention is
what makes "drift points against a PC" (a signed angle above 90°) meaningful,
and it is invariant to rotations of the neuron basis.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class GroupPCA:
    """PCA of one stimulus group.

    ``mean`` (n,), ``components`` (n, r) orthonormal columns sorted by
    decreasing variance, ``variances`` (r,) the sample variances along them,
    ``ratios`` (r,) the variance ratios v_i (sum 1), ``D`` the participation
    ratio and ``k = ⌈D⌉`` the variational-space dimension.
    """

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    ratios: np.ndarray
    D: float
    k: int

    @property
    def n(self) -> int:
        return self.mean.shape[0]

    @property
    def space(self) -> np.ndarray:
        """The variational space: the first ⌈D⌉ principal directions, (n, k)."""
        return self.components[:, : self.k]


def participation_ratio(values) -> float:
    """D = (Σ v_i)² / Σ v_i² for non-negative variances (or variance ratios)."""
    v = np.clip(np.asarray(values, dtype=float), 0.0, None)
    s2 = float(np.sum(v * v))
    return float(np.sum(v) ** 2 / s2) if s2 > 0 else 0.0


def group_pca(X, rtol: float = 1e-10) -> GroupPCA:
    """PCA of a stimulus group ``X`` of shape (m, n), m ≥ 2.

    Directions with variance below ``rtol`` × the largest are dropped (a group
    of m responses spans at most m − 1 directions). A group without any
    variance has D = 0, k = 0 and no components.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"a stimulus group must be (m, n) with m >= 2, got shape {X.shape}")
    mean = X.mean(axis=0)
    Xc = X - mean
    # SVD of the centred data: right singular vectors are the principal directions.
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    var = s * s / (X.shape[0] - 1)
    keep = var > rtol * (var[0] if var.size and var[0] > 0 else np.inf)
    var, comps = var[keep], vt[keep].T
    signs = np.where(comps.T @ mean < 0, -1.0, 1.0)
    comps = comps * signs
    total = var.sum()
    ratios = var / total if total > 0 else var
    D = participation_ratio(ratios)
    k = min(int(math.ceil(D - 1e-9)), comps.shape[1]) if D > 0 else 0
    return GroupPCA(mean=mean, components=comps, variances=var, ratios=ratios, D=D, k=k)


def variance_along(X, directions) -> np.ndarray:
    """Sample variance of group ``X`` (m, n) along each unit column of ``directions`` (n, r)."""
    X = np.asarray(X, dtype=float)
    proj = (X - X.mean(axis=0)) @ np.asarray(directions, dtype=float)
    return proj.var(axis=0, ddof=1)
