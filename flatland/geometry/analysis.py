"""All drift metrics of one run, with their resampling controls, as a tidy table.

Input: responses ``A`` of shape (sessions, stimulus groups, repeats, neurons)
and, optionally, ``B`` of the same shape: an *independent* set of noisy
passes through the same weights at each session. Every metric between
sessions s < s' is computed from ``A[s]`` (earlier: PCA, classifier) and
``B[s']`` (later), and its **control** is the same computation between
``A[s]`` and ``B[s]`` (Δt = 0): what the metric reads when nothing drifted
and only the sampling of responses differs. Recorded data has no second set;
then ``A``/``B`` are the even/odd repeats (split halves) of the one array.

The result, :class:`Measurement`, holds rows ``(metric, dt, session, unit,
value)``: a unit is a stimulus group, a pair of groups (classifiers) or a
read-out class; ``dt = 0`` rows are the controls. ``summary`` averages each
unit over session pairs first and then takes mean ± standard error over
units (and runs, after ``concat``); groups share one network, so treat that
standard error as approximate.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from ..errors import UserError
from ._classify import pair_classifier, relative_cross_accuracy, session_separability
from ._drift import angle_deg, gamma, gamma_chance, linear_fit, overlap, overlap_chance, pc_resolved
from ._pca import group_pca

PC_FIELDS = ("v", "along", "cos", "angle", "var_ratio", "retained")


def validate_responses(R, name: str = "responses") -> np.ndarray:
    """A float array (sessions ≥ 2, groups ≥ 1, repeats ≥ 4, neurons ≥ 2) of finite values, or a UserError."""
    try:
        R = np.asarray(R, dtype=float)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{name} is not a numeric array ({exc})") from None
    if R.ndim != 4:
        raise UserError(f"{name} must have 4 axes (sessions × stimulus groups × repeats × neurons), got shape {R.shape}")
    S, G, M, N = R.shape
    if S < 2 or G < 1 or M < 4 or N < 2:
        raise UserError(f"{name} needs ≥ 2 sessions, ≥ 1 stimulus group, ≥ 4 repeats and ≥ 2 neurons, got shape {R.shape}")
    if not np.all(np.isfinite(R)):
        raise UserError(f"{name} contains {int(np.sum(~np.isfinite(R)))} NaN or infinite value(s)")
    if np.ptp(R) == 0:   # all zero: infer gave a posterior and geometry dashes with a numpy warning
        raise UserError(f"{name}: every response is {R.flat[0]:g}, so no neuron responds differently to anything; "
                        "there is no drift to measure")
    return R


def split_half(R):
    """Even and odd repeats of (S, G, M, N) responses: two independent halves."""
    return R[:, :, 0::2], R[:, :, 1::2]


@dataclasses.dataclass
class Measurement:
    """Tidy rows of drift metrics (see module doc) and pooled PC-resolved arrays per Δt."""

    rows: list
    pcs: dict
    n_neurons: int
    n_sessions: int
    run: int = 0

    def values(self, metric: str, dt: int, per_unit: bool = True) -> np.ndarray:
        """Values of ``metric`` at ``dt``; with ``per_unit`` averaged over sessions per (run, unit)."""
        sel = [(r[5], r[3], r[4]) for r in self.rows if r[0] == metric and r[1] == dt]
        if not per_unit:
            return np.array([v for _, _, v in sel], dtype=float)
        acc: dict = {}
        for run, unit, v in sel:
            acc.setdefault((run, unit), []).append(v)
        return np.array([np.nanmean(v) if np.any(np.isfinite(v)) else np.nan for v in acc.values()], dtype=float)

    def per_run(self, metric: str, dt: int) -> np.ndarray:
        """Mean over units of the session-averaged values, one entry per run."""
        acc: dict = {}
        for r in self.rows:
            if r[0] == metric and r[1] == dt and np.isfinite(r[4]):
                acc.setdefault(r[5], {}).setdefault(r[3], []).append(r[4])
        return np.array([np.mean([np.mean(v) for v in units.values()]) for _, units in sorted(acc.items())])

    def gamma_net(self, dt: int, per_unit: bool = False) -> np.ndarray:
        """Per run: γ of the drift net of sampling noise, (Σ‖P_V d‖² − Σ‖P_V n‖²) / (Σ‖d‖² − Σ‖n‖²).

        d at Δt carries the sampling noise n of two finite sets of responses,
        and the Δt = 0 control is that noise alone. n lies in the variational
        space by construction (the noise of a mean has the group's covariance),
        so raw γ is pulled toward γ(control) when drift is small; drift and
        noise being independent, their squared projections add, and the
        difference of sums (over a run's stimulus groups and sessions) removes
        the noise. ``per_unit``: the same per stimulus group (noisier; NaN where
        the group's drift does not exceed its control), for a single recording.
        """
        get = self.values if per_unit else self.per_run
        num = get("drift_in_space_sq", dt) - get("drift_in_space_sq", 0)
        den = get("drift_sq", dt) - get("drift_sq", 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    def gamma_net_excess(self, dt: int) -> tuple:
        """γ net of sampling noise minus chance ⌈D⌉/n: (mean, s.e.) over runs (≥ 3 runs: groups of one
        network are correlated), else over stimulus groups (``gamma_net(per_unit=True)``)."""
        v = self.gamma_net(dt) - self.per_run("gamma_chance", dt)
        if v.size < 3:
            v = self.gamma_net(dt, per_unit=True) - self.values("gamma_chance", dt)
        v = v[np.isfinite(v)]
        if v.size < 2:
            return float("nan"), float("nan")
        return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))

    def summary(self, metric: str, dt: int):
        """(mean, standard error, count) over units of the session-averaged values."""
        v = self.values(metric, dt)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return float("nan"), float("nan"), 0
        se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
        return float(v.mean()), se, int(v.size)

    def dts(self) -> list:
        return sorted({r[1] for r in self.rows if r[1] > 0})

    def metrics(self) -> list:
        return sorted({r[0] for r in self.rows})

    def pc_fit(self, x: str, y: str, dt: int, log: bool = False):
        """Linear fit of PC-resolved field ``y`` against ``x`` pooled at ``dt`` (log10 of both if ``log``)."""
        p = self.pcs.get(dt)
        if p is None:
            return linear_fit([], [])
        xs, ys = p[x], p[y]
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                xs, ys = np.log10(xs), np.log10(ys)
        return linear_fit(xs, ys)

    @staticmethod
    def concat(items):
        """Pool several runs (e.g. seeds): units become (run, unit)."""
        items = list(items)
        rows, pcs = [], {}
        for i, m in enumerate(items):
            rows += [r[:5] + (i,) for r in m.rows]
            for dt, p in m.pcs.items():
                q = pcs.setdefault(dt, {k: [] for k in PC_FIELDS})
                for k in PC_FIELDS:
                    q[k].append(p[k])
        pcs = {dt: {k: np.concatenate(v) for k, v in p.items()} for dt, p in pcs.items()}
        return Measurement(rows, pcs, items[0].n_neurons, items[0].n_sessions)


def measure(A, B=None, readouts=None, *, classifiers: bool = True, max_pairs: int = 45,
            folds: int = 4, n_pcs: int | None = None, kind: str = "ridge") -> Measurement:
    """Every metric between every pair of sessions s ≤ s' (s = s': control). See the module doc.

    ``readouts``: optional (sessions, classes, neurons) read-out weights; their
    angle change has control 0 (weights are observed without sampling noise).
    ``kind`` selects the linear classifier (``ridge``, default, or ``svc``).
    """
    A = validate_responses(A, "responses")
    if B is None:
        A, B = split_half(A)
    else:
        B = validate_responses(B, "resampled responses")
        if B.shape[:2] != A.shape[:2] or B.shape[3] != A.shape[3]:
            raise UserError(f"resampled responses shape {B.shape} does not match responses {A.shape}")
    S, G, _, N = A.shape
    pa = [[group_pca(A[s, g]) for g in range(G)] for s in range(S)]
    pb = [[group_pca(B[s, g]) for g in range(G)] for s in range(S)]
    rows: list = []
    pcs: dict = {}

    def add(metric, dt, s, unit, value):
        rows.append((metric, dt, s, unit, float(value), 0))

    for s in range(S):
        for g in range(G):
            add("D", 0, s, g, pa[s][g].D)
            add("D_over_n", 0, s, g, pa[s][g].D / N)
    for s, s2 in itertools.combinations_with_replacement(range(S), 2):
        dt = s2 - s
        for g in range(G):
            e, l = pa[s][g], pb[s2][g]
            d = l.mean - e.mean
            add("rel_drift", dt, s, g, np.linalg.norm(d) / np.linalg.norm(e.mean))
            add("mean_angle", dt, s, g, angle_deg(e.mean, l.mean))
            add("gamma", dt, s, g, gamma(e, d))
            add("drift_sq", dt, s, g, d @ d)
            add("drift_in_space_sq", dt, s, g, np.sum((e.space.T @ d) ** 2))
            add("gamma_chance", dt, s, g, gamma_chance(e))
            add("Gamma", dt, s, g, overlap(e, l))
            add("Gamma_chance", dt, s, g, overlap_chance(e, l))
            add("D_change", dt, s, g, l.D - e.D)
            pr = pc_resolved(e, B[s2, g], d=d, n_pcs=n_pcs)
            if pr.v.size:
                add("pc1_cos", dt, s, g, pr.cos[0])
                add("pc1_angle", dt, s, g, pr.angle[0])
                add("pc1_retained", dt, s, g, pr.retained[0])
                q = pcs.setdefault(dt, {k: [] for k in PC_FIELDS})
                for k in PC_FIELDS:
                    q[k].append(getattr(pr, k))
            if classifiers:
                add("session_acc", dt, s, g, session_separability(A[s, g], B[s2, g], folds=folds, kind=kind))
        if readouts is not None:
            W = np.asarray(readouts, dtype=float)
            for c in range(W.shape[1]):
                add("readout_angle", dt, s, c, angle_deg(W[s, c], W[s2, c]))
    if classifiers and G >= 2:
        _pair_rows(A, B, add, max_pairs, kind)
    pcs = {dt: {k: np.concatenate(v) for k, v in p.items()} for dt, p in pcs.items()}
    return Measurement(rows, pcs, N, S)


def _pair_rows(A, B, add, max_pairs, kind):
    """Per-session classifiers between pairs of groups: angle, cross-accuracy, relative cross-accuracy.

    A classifier is trained on the even repeats of a set and tested on the odd
    repeats of the other set: A[s] → B[s'] (s = s' is the control).
    """
    S, G = A.shape[:2]
    pairs = list(itertools.combinations(range(G), 2))[:max_pairs]
    for u, (g, h) in enumerate(pairs):
        ca = [pair_classifier(A[s, g, 0::2], A[s, h, 0::2], kind) for s in range(S)]
        cb = [pair_classifier(B[s, g, 0::2], B[s, h, 0::2], kind) for s in range(S)]
        self_acc = [ca[s].group_accuracy(B[s, g, 1::2], B[s, h, 1::2]) for s in range(S)]
        for s, s2 in itertools.combinations_with_replacement(range(S), 2):
            dt = s2 - s
            cross = ca[s].group_accuracy(B[s2, g, 1::2], B[s2, h, 1::2]) if dt else self_acc[s]
            add("svc_angle", dt, s, u, angle_deg(ca[s].normal, cb[s2].normal))
            add("self_acc", dt, s, u, self_acc[s])
            add("cross_acc", dt, s, u, cross)
            add("rel_cross_acc", dt, s, u, relative_cross_accuracy(cross, self_acc[s]))
