"""Sparsification timescale and the three phases of learning, from logged curves.

What: ``fit_timescale(steps, active_units)`` fits the exponential decay of the
fraction of active units the way Ratzon et al. (eLife 2024) describe: shift the curve so its
plateau is 0, keep it only until 90% of the drop is done, and fit
log(y − plateau) linearly in time from the peak. It returns τ (steps) and the
decay rate 1/τ with the fit's R², or ``ok: False`` with the reason — a failed
fit is never reported as τ = 0 or ∞.

``loss_plateau(steps, loss)`` is the one rule for where a loss curve reaches its
plateau, used by the phase labels and by the relu checks: from the plateau's
start on, within every decade of steps the loss's level (its median over a
quarter decade, robust to Adam's spikes and a noisy run's bursts) stays within
[½, 2]× of its level at the decade's centre, and the run goes on for a decade
after the start. It is local in
log-time: a noise-free loss keeps decaying slowly after the fit (here about ×2
a decade, for GD as for the adaptive learners), so a rule anchored to the end
value moves with the run's length.

``label_phases(steps, loss, active_units)`` labels (i) fast convergence: until
the loss reaches its plateau (``loss_plateau``); (ii) directed drift: from there until 90% of the
active-unit drop after convergence is done; (iii) null drift: the rest, where
the statistics are stationary (the drift of the mean over that phase is
reported so it can be judged). If the active-unit fraction falls by less than
``min_drop`` after convergence, phase (ii) is reported as not detected. If the
curve still moves over the last quarter of the run (a linear trend > 3 s.e. and
> 10% of the drop), no null-drift phase is claimed: directed drift runs to the end.

Why the plateau: the public code shifts by the curve's minimum, which on a
noisy curve sits below the plateau and bends the log; the mean of the last 10%
is the plateau estimate here (its s.e. over those points is reported).
"""
from __future__ import annotations

import numpy as np


def _smooth(y, window):
    if window <= 1:
        return np.asarray(y, float)
    k = np.ones(window) / window
    pad = np.pad(np.asarray(y, float), (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(pad, k, mode="valid")


def fit_timescale(steps, y, tail=0.1, clip=0.9, min_drop=0.02, min_points=4) -> dict:
    """Exponential timescale of a decaying curve (see module doc)."""
    steps = np.asarray(steps, float)
    y = np.asarray(y, float)
    ok = np.isfinite(y)
    steps, y = steps[ok], y[ok]
    if y.size < min_points:
        return {"ok": False, "reason": f"only {y.size} finite points"}
    n_tail = max(2, int(round(tail * y.size)))
    plateau = float(np.mean(y[-n_tail:]))
    plateau_se = float(np.std(y[-n_tail:], ddof=1) / np.sqrt(n_tail))
    i0 = int(np.argmax(y))
    drop = y[i0] - plateau
    res = {"plateau": plateau, "plateau_se": plateau_se, "peak": float(y[i0]), "peak_step": float(steps[i0]),
           "drop": float(drop)}
    if drop < min_drop:
        return res | {"ok": False, "reason": f"drop {drop:.3g} below {min_drop} (no sparsification to fit)"}
    target = y[i0] - clip * drop
    below = np.nonzero(y[i0:] <= target)[0]
    i1 = i0 + (int(below[0]) if below.size else y.size - i0 - 1)
    xs, ys = steps[i0:i1 + 1], y[i0:i1 + 1] - plateau
    keep = ys > 0
    xs, ys = xs[keep], ys[keep]
    if xs.size < min_points:
        return res | {"ok": False, "reason": f"only {xs.size} points between the peak and 90% of the drop"}
    A = np.stack([xs - xs[0], np.ones_like(xs)], 1)
    coef, *_ = np.linalg.lstsq(A, np.log(ys), rcond=None)
    pred = A @ coef
    ss_res = float(np.sum((np.log(ys) - pred) ** 2))
    ss_tot = float(np.sum((np.log(ys) - np.log(ys).mean()) ** 2))
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    slope = float(coef[0])
    if not slope < 0:
        return res | {"ok": False, "reason": f"fitted slope {slope:.3g} is not a decay", "r2": r2}
    return res | {"ok": True, "tau": -1.0 / slope, "rate": -slope, "log10_rate": float(np.log10(-slope)),
                  "r2": r2, "fit_points": int(xs.size), "fit_until_step": float(xs[-1])}


END_WINDOW = 0.25  # the last fraction of the run whose trend decides "still drifting"
STILL_DRIFTING = 0.1  # ... when it changes by more than this fraction of the drop (and > 3 s.e.)


def end_trend(steps, y) -> dict:
    """Least-squares line through the last ``END_WINDOW`` of a curve: its change over the window and s.e.

    The s.e. treats logged points as independent (OLS); logged every few hundred steps
    the active-unit fraction's fluctuations decorrelate, and a run without a trend reads ≈ 0.
    """
    steps, y = np.asarray(steps, float), np.asarray(y, float)
    k = max(4, int(round(END_WINDOW * steps.size)))
    x, v = steps[-k:], y[-k:]
    A = np.stack([x - x.mean(), np.ones_like(x)], 1)
    coef, *_ = np.linalg.lstsq(A, v, rcond=None)
    resid = v - A @ coef
    slope_se = float(np.sqrt(np.sum(resid**2) / max(k - 2, 1) / np.sum((x - x.mean()) ** 2)))
    span = float(x[-1] - x[0])
    change, change_se = float(coef[0]) * span, slope_se * span
    return {"change": change, "change_se": change_se}


def still_drifting(trend: dict, drop: float) -> bool:
    """Whether the end trend is real (> 3 s.e.) and large (> ``STILL_DRIFTING`` of the drop)."""
    return abs(trend["change"]) > 3 * trend["change_se"] and abs(trend["change"]) > STILL_DRIFTING * drop


PLATEAU_BAND = 2.0    # on the plateau: within every decade of steps the loss stays within [½, 2]× of its level there
LEVEL_WINDOW = 0.25   # the loss's level at a step: its median over a quarter decade of steps centred there ...
MEDIAN_POINTS = 5     # ... or over this many logged points when the quarter decade holds fewer
END_FRACTION = 0.1    # the end level: the mean over the last 10% of logged points


def log_time_level(log_steps, y):
    """The level of a curve at each logged point: its median over a quarter decade of steps centred there
    (at least ``MEDIAN_POINTS`` logged points). Excursions shorter than half that window (Adam's spikes, a
    noisy run's loss bursts at the edge of stability) do not move it; NaN where the window is not finite."""
    n = y.size
    lo = np.searchsorted(log_steps, log_steps - LEVEL_WINDOW / 2, side="left")
    hi = np.searchsorted(log_steps, log_steps + LEVEL_WINDOW / 2, side="right")
    h = MEDIAN_POINTS // 2
    few = hi - lo < MEDIAN_POINTS
    lo = np.where(few, np.clip(np.arange(n) - h, 0, max(n - MEDIAN_POINTS, 0)), lo)
    hi = np.where(few, np.minimum(lo + MEDIAN_POINTS, n), hi)
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(y))])
    return np.array([np.median(y[i:j]) if bad[j] == bad[i] else np.nan for i, j in zip(lo, hi)])


def loss_plateau(steps, loss) -> dict:
    """Where a loss curve reaches its plateau (one rule for the phase labels and the relu checks).

    ``steps`` count from the run's start. The loss's level at each logged point is its median over a
    quarter decade of steps around it (``log_time_level``). Each point opens a window of one decade of
    steps (to 10× its step); the point is *off* the plateau when somewhere in that window the level leaves
    [1/``PLATEAU_BAND``, ``PLATEAU_BAND``]× the level at the window's centre in log-time. The plateau
    starts after the last point off it, and it is ``reached`` when the run goes on for a whole decade
    from there. The rule is local in log-time, so it does not move with the run's length: a noise-free
    loss approaching zero as t^−a is on its plateau everywhere when it falls less than about ×4 a decade
    and nowhere when it falls much faster (a fit), however long the run. A rule anchored to the end value
    put the start at a fixed fraction of the run instead (examples/recorded/rmsprop-plateau). Returns
    ``index`` (the first point on the plateau; the last point if none is), ``level`` (the end level, the
    mean of the last 10%) and ``reached``. A non-finite loss is never on a plateau."""
    steps, loss = np.asarray(steps, float), np.asarray(loss, float)
    n = loss.size
    if steps.shape != loss.shape or n == 0:
        raise ValueError(f"loss_plateau needs one step per logged loss; got {steps.size} steps and {n} losses")
    level = float(np.mean(loss[-max(1, int(round(END_FRACTION * n))):]))
    first = steps[steps > 0].min() if (steps > 0).any() else 1.0
    log_steps = np.log10(np.maximum(steps, first))
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log(log_time_level(log_steps, loss))
    end = np.searchsorted(log_steps, log_steps + 1, side="right")            # each point's decade: [i, end)
    centre = np.searchsorted(log_steps, (log_steps + log_steps[end - 1]) / 2)  # its centre in log-time
    limit = np.log(PLATEAU_BAND)

    def off(i):
        w = x[i:end[i]]
        return not (np.isfinite(w).all() and w.max() - x[centre[i]] <= limit and x[centre[i]] - w.min() <= limit)

    last_off = next((i for i in range(n - 1, -1, -1) if off(i)), -1)
    index = min(last_off + 1, n - 1)
    reached = last_off < n - 1 and steps[-1] >= 10 * max(steps[index], first)
    return {"index": index, "level": level, "reached": bool(reached)}


def label_phases(steps, loss, active_units, min_drop=0.02, smooth_frac=0.05) -> dict:
    """Fast convergence / directed drift / null drift boundaries (see module doc)."""
    steps = np.asarray(steps, float)
    loss = np.asarray(loss, float)
    au = np.asarray(active_units, float)
    n = steps.size
    if n < 4 or not np.isfinite(loss).all():
        return {"ok": False, "reason": "too few logged points" if n < 4 else "the loss is not finite throughout"}
    w = max(1, int(smooth_frac * n))
    plateau = loss_plateau(steps, loss)
    i_conv = plateau["index"]
    aus = _smooth(au, w)
    au_plateau = float(np.mean(aus[-max(2, n // 10):]))
    drop = float(aus[i_conv] - au_plateau)
    out = {"ok": True, "loss_plateau_log10": float(np.log10(max(plateau["level"], 1e-300))),
           "converged_step": float(steps[i_conv]), "loss_on_plateau": plateau["reached"],
           "fast_convergence": [float(steps[0]), float(steps[i_conv])]}
    if drop < min_drop:
        out |= {"directed_drift": None, "null_drift": [float(steps[i_conv]), float(steps[-1])],
                "note": f"active-unit fraction fell by {drop:.3g} < {min_drop} after convergence: no directed drift"}
        i_null = i_conv
    else:
        trend = end_trend(steps, au)
        if still_drifting(trend, drop):
            out |= {"directed_drift": [float(steps[i_conv]), float(steps[-1])], "null_drift": None,
                    "note": f"still drifting at the end: the active-unit fraction changed by {trend['change']:.3g} ± "
                            f"{trend['change_se']:.2g} over the last {END_WINDOW:.0%} of the run (> 3 s.e. and > "
                            f"{STILL_DRIFTING:.0%} of the drop {drop:.3g}); no null-drift phase is claimed",
                    "end_change": trend["change"], "end_change_se": trend["change_se"]}
            return out
        done = np.nonzero(aus[i_conv:] <= au_plateau + 0.1 * drop)[0]
        i_null = i_conv + (int(done[0]) if done.size else n - 1 - i_conv)
        out |= {"directed_drift": [float(steps[i_conv]), float(steps[i_null])],
                "null_drift": [float(steps[i_null]), float(steps[-1])] if i_null < n - 1 else None,
                "end_change": trend["change"], "end_change_se": trend["change_se"]}
    tail = au[i_null:]
    if tail.size >= 4:
        h = tail.size // 2
        out["null_drift_mean_change"] = float(tail[h:].mean() - tail[:h].mean())
    return out
