"""Figures like Aitken et al. 2022's, one panel (column) per noise type or dataset.

* :func:`plot_pc_resolved`: drift along PC_i / ‖d‖, angle(d, PC_i) and later
  variance ratio along PC_i against v_i, with linear fits (Δt = largest);
* :func:`plot_vs_dt`: γ (with chance and control), classifier angle and
  relative cross-accuracy against Δt (Δt = 0 is the resampling control).

Matplotlib with the Agg backend, PNG files; returns the paths written.
"""
from __future__ import annotations

import os

import numpy as np

from ..check_figures import _plt
from ..results import write_captions


def _plain_log_ticks(ax) -> None:
    """Log axes labelled with plain numbers at 1, 2, 5 × 10^k (every 1–9 × 10^k within one decade), no minor
    labels: matplotlib's own labels overlap on ranges of less than a decade."""
    from matplotlib import ticker

    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        ks = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
        for mults in ((1, 2, 5), tuple(range(1, 10))):
            ticks = [m * 10.0 ** k for k in ks for m in mults if lo <= m * 10.0 ** k <= hi]
            if len(ticks) >= 3:
                break
        if len(ticks) > 7:
            ticks = ticks[:: int(np.ceil(len(ticks) / 6))]
        axis.set_major_locator(ticker.FixedLocator(ticks))
        axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        axis.set_minor_formatter(ticker.NullFormatter())


def plot_pc_resolved(measurements: dict, path: str, dt: int | None = None) -> str:
    """Drift vs variance per PC, one column per entry of ``measurements`` (name → Measurement).

    Blue: the largest Δt; grey: the Δt = 0 resampling control (what the same computation reads when
    nothing drifted), each with its least-squares line (log–log in the last row).
    """
    plt = _plt()
    names = list(measurements)
    fig, axes = plt.subplots(3, len(names), figsize=(max(4.4, 3.6 * len(names)), 9.2), squeeze=False)
    rows = (("along", "|d·w_i| / ‖d‖", False), ("angle", "angle(d, w_i) [deg]", False),
            ("var_ratio", "later var. ratio along w_i", True))
    for j, name in enumerate(names):
        m = measurements[name]
        t = dt if dt is not None else max(m.dts())
        for i, (field, label, log) in enumerate(rows):
            ax = axes[i, j]
            for when, colour, tag in ((0, "0.55", "control (Δt = 0)"), (t, "C0", f"Δt = {t}")):
                p = m.pcs.get(when)
                if p is None:
                    continue
                x, y = p["v"], p[field]
                ax.scatter(x, y, s=5, alpha=0.5, color=colour, lw=0)
                f = m.pc_fit("v", field, when, log=log)
                xs = np.linspace(max(x.min(), 1e-4), x.max(), 50)
                if np.isfinite(f.slope):
                    ys = 10 ** (f.intercept + f.slope * np.log10(xs)) if log else f.intercept + f.slope * xs
                    ax.plot(xs, ys, color="C3" if when else "0.3", lw=1.2,
                            label=f"{tag}: slope {f.slope:.2g}, r = {f.r:.2f}")
            if log:
                ax.set_xscale("log"), ax.set_yscale("log")
                lo, hi = ax.get_xlim()
                ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="later = earlier (y = v_i)")
                _plain_log_ticks(ax)
            if field == "angle":
                ax.axhline(90, color="k", lw=0.5, label="90° (orthogonal)")
            ax.legend(fontsize=6)
            ax.set_xlabel("variance ratio v_i of PC w_i (earlier session)", fontsize=8)
            if j == 0:
                ax.set_ylabel(label)
        axes[0, j].set_title(f"{name}: drift d per PC (Δt = {t})", fontsize=9)
    fig.suptitle("dots: the PCs of every stimulus group and session pair\nlines: least-squares fits", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_vs_dt(measurements: dict, path: str) -> str:
    """γ, classifier angle and relative cross-accuracy vs Δt, one column per entry (mean ± 1 s.e.)."""
    plt = _plt()
    names = list(measurements)
    fig, axes = plt.subplots(3, len(names), figsize=(max(4.4, 3.6 * len(names)), 8.6), squeeze=False)
    for j, name in enumerate(names):
        m = measurements[name]
        dts = [0] + m.dts()
        for i, (metric, label, extra) in enumerate((("gamma", "γ (drift in var. space)", "gamma_chance"),
                                                    ("svc_angle", "classifier angle [deg]", None),
                                                    ("rel_cross_acc", "relative cross-accuracy", None))):
            ax = axes[i, j]
            mean = [m.summary(metric, t)[0] for t in dts]
            se = [m.summary(metric, t)[1] for t in dts]
            ax.errorbar(dts[1:], mean[1:], yerr=se[1:], marker="o", color="C0", capsize=2, label="drift")
            ax.errorbar([0], mean[:1], yerr=se[:1], marker="s", color="C1", capsize=2, label="control (Δt = 0)")
            if extra:
                ax.plot(dts, [m.summary(extra, t)[0] for t in dts], "k--", lw=1, label="chance")
            ax.set_xlabel("Δt [sessions]")
            if j == 0:
                ax.set_ylabel(label)
            if i == 0:
                ax.set_title(name, fontsize=9)
                ax.legend(fontsize=7)
    fig.suptitle("mean ± 1 s.e. over stimulus groups (γ) or group pairs\n(classifiers), sessions averaged first",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


CAPTIONS = {
    "drift_vs_variance_per_pc.png":
        "drift resolved along the principal components w_i of each stimulus group's responses (as in Aitken "
        "et al. 2022): the share of the drift vector d along w_i, the angle between d and w_i, and the later "
        "session's variance ratio along w_i, each against the PC's variance ratio v_i; blue: the largest Δt, "
        "grey: the Δt = 0 resampling control; lines: least-squares fits with slope and r (log–log in the last "
        "row; dotted: later = earlier).",
    "metrics_vs_dt.png":
        "against the sessions between two recordings (Δt): γ, the drift's share in the variational space "
        "(dashed: its value for a random direction), the angle between the linear classifiers of two sessions "
        "and the relative cross-accuracy (a later session read out by the earlier classifier); orange: the "
        "Δt = 0 resampling control; mean ± 1 s.e.",
}


def write_figures(measurements: dict, out: str, prefix: str = "") -> list:
    """Both figures into folder ``out``, with their captions in ``out/README.md``; returns their paths."""
    os.makedirs(out, exist_ok=True)
    paths = [plot_pc_resolved(measurements, os.path.join(out, f"{prefix}drift_vs_variance_per_pc.png")),
             plot_vs_dt(measurements, os.path.join(out, f"{prefix}metrics_vs_dt.png"))]
    write_captions(out, [(p, CAPTIONS[os.path.basename(p)[len(prefix):]]) for p in paths],
                   "written by flatland geometry / reproduce")
    return paths
