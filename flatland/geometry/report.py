"""Text reports of a :class:`~flatland.geometry.Measurement`: metric × Δt with the control beside it."""
from __future__ import annotations

import math

#: metric -> description, in report order
DESCRIPTIONS = {
    "rel_drift": "‖d‖/‖x̄‖ relative drift size",
    "mean_angle": "angle between mean responses [deg]",
    "gamma": "γ drift-in-variation ratio",
    "gamma_chance": "γ chance ⌈D⌉/n",
    "drift_sq": "‖d‖² (sampling noise included)",
    "drift_in_space_sq": "‖d‖² within the earlier variational space",
    "Gamma": "Γ variational-space overlap",
    "Gamma_chance": "Γ chance",
    "D_change": "D(later) − D(earlier)",
    "pc1_cos": "cos(d, PC1) (PC1 along the mean)",
    "pc1_angle": "angle(d, PC1) [deg]",
    "pc1_retained": "PC1 variance retained",
    "session_acc": "session classifier accuracy",
    "svc_angle": "per-session classifier angle [deg]",
    "cross_acc": "cross-session accuracy",
    "rel_cross_acc": "relative cross-accuracy",
    "readout_angle": "read-out weight angle [deg]",
}


def _fmt(mean, se):
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.3g}±{se:.2g}" if math.isfinite(se) else f"{mean:.3g}"


def report_lines(m, title: str = "") -> list:
    """Lines: D/n, then each metric's control (Δt = 0) and value at each Δt, then PC-resolved fits."""
    dts = m.dts()
    lines = [title] if title else []
    D, Dse, _ = m.summary("D_over_n", 0)
    lines.append(f"neurons n = {m.n_neurons}, sessions = {m.n_sessions}, D/n = {_fmt(D, Dse)}  (mean ± s.e. over units)")
    head = f"{'metric':40s} {'control Δt=0':>14s} " + " ".join(f"{'Δt=' + str(t):>14s}" for t in dts)
    lines += [head, "-" * len(head)]
    present = set(m.metrics())
    for key, words in DESCRIPTIONS.items():
        if key not in present:
            continue
        cells = [_fmt(*m.summary(key, t)[:2]) for t in [0] + dts]
        lines.append(f"{words:40s} " + " ".join(f"{c:>14s}" for c in cells))
    t = max(dts)
    for x, y, log, words in (("v", "along", False, "|d·w_i|/‖d‖ vs v_i"), ("v", "angle", False, "angle(d, w_i) vs v_i"),
                             ("v", "var_ratio", True, "log later var. ratio vs log v_i")):
        f, c = m.pc_fit(x, y, t, log), m.pc_fit(x, y, 0, log)
        lines.append(f"fit {words:34s} Δt={t}: slope {f.slope:.3g}±{f.slope_se:.2g}, r = {f.r:.2f}"
                     f"   control: slope {c.slope:.3g}, r = {c.r:.2f}")
    return lines
