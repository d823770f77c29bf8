"""Drift signatures from responses alone, each with its Δt = 0 control.

What: ``signature(R, B=None)`` turns a recording — responses R of shape
(sessions, groups, repeats, units) and optionally an independent resample B —
into named features with a physical meaning, and the same statistics computed
on a sequence with no elapsed time (sessions replaced by alternating
independent passes of the first session: B when given, else even and odd
repeats; one session more when their number is odd, so that the first and
last are independent passes). A feature far from its control is drift; one near it is noise.

Why these: each noise type leaves a different implicit regularizer (Ratzon,
Derdikman & Barak, eLife 2024): isotropic update noise lowers Σ log of the
nonzero Hessian eigenvalues, which silences units (sparsification), label
noise lowers tr H; and the geometry of drift against a population's own
variability separates dropout-like from other noise (Aitken et al., PLOS CB
2022). The readout block of the Hessian is ∝ HᵀH of the recorded activity H,
so a response-only proxy of tr H and of its rank exists.

Features (means over adjacent session pairs unless said):

* ``active_change`` — log of the active-unit share, last/first session; a
  unit is active when its mean response exceeds 3 noise standard errors
  (noise from A − B when a resample exists, else 0);
* ``active_slowing`` — early minus late slope of log active share (> 0: an
  exponential approach to a plateau, the sparsification timescale's shape);
* ``rate_change`` — log mean response, last/first;
* ``drift_speed`` — log median ‖ΔM‖/‖M‖ of the group means M (groups × units);
* ``drift_activity`` — Spearman ρ across units of relative drift vs activity;
* ``gamma_excess`` — drift-in-variation ratio γ minus its chance ⌈D⌉/n;
* ``drift_top_pc`` — cos² of the drift with the group's first PC;
* ``dimension_change`` — log participation ratio of M, last/first;
* ``tuning_turnover`` — 1 − correlation of a unit's tuning (over groups), first vs last;
* ``status_turnover`` — units active in only one of first/last over those active in either;
* ``proxy_trace_change`` — log tr(HᵀH), last/first (the readout-Hessian trace);
* ``proxy_rank_change`` — log numerical rank of HᵀH above the noise edge, last/first.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..geometry import gamma, gamma_chance, group_pca, participation_ratio

FEATURES = ("active_change", "active_slowing", "rate_change", "drift_speed", "drift_activity", "gamma_excess",
            "drift_top_pc", "dimension_change", "tuning_turnover", "status_turnover", "proxy_trace_change",
            "proxy_rank_change")
TINY = 1e-12


@dataclasses.dataclass
class Signature:
    """``values`` and ``controls``: {feature name: float} (NaN where a feature is undefined)."""

    values: dict
    controls: dict

    def vector(self, names=FEATURES) -> np.ndarray:
        return np.array([self.values.get(n, np.nan) for n in names], float)


def _noise_se(A, B):
    """Per-unit standard error of a session's mean response from two independent passes (0 without B)."""
    if B is None:
        return np.zeros(A.shape[-1])
    d = (A - B).reshape(-1, A.shape[-1])
    return d.std(axis=0, ddof=1) / np.sqrt(2) / np.sqrt(d.shape[0])


def _active(S, se):
    m = S.mean(axis=(0, 1))
    return (m > 3 * se) & (m > 1e-6 * max(float(np.max(np.abs(m))), TINY))


def _slope(y):
    x = np.arange(len(y), dtype=float)
    return float(np.polyfit(x, y, 1)[0]) if len(y) >= 2 else np.nan


def _spearman(a, b):
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _rank(S, noise_var):
    """Numerical rank of HᵀH (H = stimuli × units) above the Marchenko–Pastur edge of the noise."""
    H = S.reshape(-1, S.shape[-1])
    n, N = H.shape
    lam = np.linalg.eigvalsh(H @ H.T / n) if n <= N else np.linalg.eigvalsh(H.T @ H / n)
    edge = float(np.mean(noise_var)) * (1 + np.sqrt(min(n, N) / max(n, N))) ** 2 * max(n, N) / n
    return int(np.sum(lam > max(1e-6 * float(lam.max(initial=0)), edge)))


def _pair(S0, S1):
    """Statistics of one adjacent pair: relative drift, drift vs activity, γ excess, top-PC cos²."""
    M0, M1 = S0.mean(axis=1), S1.mean(axis=1)
    speed = np.linalg.norm(M1 - M0) / max(np.linalg.norm(M0), TINY)
    act = M0.mean(axis=0)
    unit_drift = np.linalg.norm(M1 - M0, axis=0) / np.maximum(np.linalg.norm(M0, axis=0), TINY)
    on = act > 1e-6 * max(float(np.max(np.abs(act))), TINY)
    rho = _spearman(act[on], unit_drift[on])
    gs, tops = [], []
    for g in range(S0.shape[0]):
        p = group_pca(S0[g])
        d = M1[g] - M0[g]
        if p.k == 0 or not np.any(d):
            continue
        gs.append(gamma(p, d) - gamma_chance(p))
        tops.append(float((p.components[:, 0] @ d) ** 2 / (d @ d)))
    return speed, rho, np.mean(gs) if gs else np.nan, np.mean(tops) if tops else np.nan


def _features(seq, se) -> dict:
    """The features of a sequence of sessions (S, G, K, N) with per-unit noise s.e. ``se``."""
    S, G, K, N = seq.shape
    active = np.array([_active(s, se) for s in seq])
    share = np.log(active.mean(axis=1) + 1.0 / N)
    half = max(2, (S + 1) // 2)
    out = {"active_change": share[-1] - share[0],
           "active_slowing": _slope(share[:half]) - _slope(share[S - half:]) if S >= 3 else np.nan,
           "rate_change": float(np.log(max(seq[-1].mean(), TINY) / max(seq[0].mean(), TINY)))}
    pairs = np.array([_pair(seq[i], seq[i + 1]) for i in range(S - 1)], float)
    with np.errstate(all="ignore"):
        out["drift_speed"] = float(np.log(max(np.nanmedian(pairs[:, 0]), TINY)))
        out["drift_activity"], out["gamma_excess"], out["drift_top_pc"] = (
            float(np.nanmean(pairs[:, j])) if np.any(np.isfinite(pairs[:, j])) else np.nan for j in (1, 2, 3))
    M0, M1 = seq[0].mean(axis=1), seq[-1].mean(axis=1)
    pr = [participation_ratio(np.linalg.eigvalsh(np.cov(M.T)) if G >= 2 else [0]) for M in (M0, M1)]
    out["dimension_change"] = float(np.log(max(pr[1], TINY) / max(pr[0], TINY))) if min(pr) > 0 else np.nan
    both = active[0] & active[-1] & (M0.std(axis=0) > 0) & (M1.std(axis=0) > 0)
    if G >= 3 and both.any():
        c = [np.corrcoef(M0[:, u], M1[:, u])[0, 1] for u in np.flatnonzero(both)]
        out["tuning_turnover"] = float(1 - np.mean(c))
    else:
        out["tuning_turnover"] = np.nan
    either = active[0] | active[-1]
    out["status_turnover"] = float(np.sum(active[0] ^ active[-1]) / either.sum()) if either.any() else np.nan
    tr = [float(np.mean(s ** 2)) for s in (seq[0], seq[-1])]
    out["proxy_trace_change"] = float(np.log(max(tr[1], TINY) / max(tr[0], TINY)))
    nv = (se ** 2) * G * K
    rk = [_rank(s, nv) for s in (seq[0], seq[-1])]
    out["proxy_rank_change"] = float(np.log((rk[1] + 1) / (rk[0] + 1)))
    return out


def signature(R, B=None) -> Signature:
    """Features of recording R (and resample B) and their Δt = 0 controls (module doc)."""
    R = np.asarray(R, float)
    if B is None:
        A, Bh = R[:, :, 0::2], R[:, :, 1::2]
        K = min(A.shape[2], Bh.shape[2])
        A, Bh = A[:, :, :K], Bh[:, :, :K]
        se = np.zeros(R.shape[-1])
    else:
        A, Bh = R, np.asarray(B, float)
        se = np.mean([_noise_se(A[s], Bh[s]) for s in range(R.shape[0])], axis=0)
    # an even number of alternating passes, so the last is the other pass than the first: with 5 sessions
    # (record's default) the last was the first again and every last/first control was exactly 0
    control = np.array([A[0] if i % 2 == 0 else Bh[0] for i in range(R.shape[0] + R.shape[0] % 2)])
    with np.errstate(all="ignore"):
        return Signature(_features(A, se), _features(control, se))
