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


def plot_pc_resolved(measurements: dict, path: str, dt: int | None = None) -> str:
    """Drift vs variance per PC, one column per entry of ``measurements`` (name → Measurement)."""
    plt = _plt()
    names = list(measurements)
    fig, axes = plt.subplots(3, len(names), figsize=(3.2 * len(names), 8.5), squeeze=False)
    rows = (("along", "|d·w_i| / ‖d‖", False), ("angle", "angle(d, w_i) [deg]", False),
            ("var_ratio", "later var. ratio along w_i", True))
    for j, name in enumerate(names):
        m = measurements[name]
        t = dt if dt is not None else max(m.dts())
        p = m.pcs.get(t)
        for i, (field, label, log) in enumerate(rows):
            ax = axes[i, j]
            if p is None:
                continue
            x, y = p["v"], p[field]
            ax.scatter(x, y, s=3, alpha=0.25, color="C0")
            f = m.pc_fit("v", field, t, log=log)
            xs = np.linspace(max(x.min(), 1e-4), x.max(), 50)
            if np.isfinite(f.slope):
                ys = 10 ** (f.intercept + f.slope * np.log10(xs)) if log else f.intercept + f.slope * xs
                ax.plot(xs, ys, color="C3", label=f"fit r={f.r:.2f}")
                ax.legend(fontsize=7)
            if log:
                ax.set_xscale("log"), ax.set_yscale("log")
                ax.plot(xs, xs, "k:", lw=1)
            if field == "angle":
                ax.axhline(90, color="k", lw=0.5)
            ax.set_xlabel("variance ratio v_i")
            if j == 0:
                ax.set_ylabel(label)
        axes[0, j].set_title(f"{name} (Δt = {t})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_vs_dt(measurements: dict, path: str) -> str:
    """γ, classifier angle and relative cross-accuracy vs Δt, one column per entry."""
    plt = _plt()
    names = list(measurements)
    fig, axes = plt.subplots(3, len(names), figsize=(3.2 * len(names), 8), squeeze=False)
    for j, name in enumerate(names):
        m = measurements[name]
        dts = [0] + m.dts()
        for i, (metric, label, extra) in enumerate((("gamma", "γ (drift in var. space)", "gamma_chance"),
                                                    ("svc_angle", "classifier angle [deg]", None),
                                                    ("rel_cross_acc", "relative cross-accuracy", None))):
            ax = axes[i, j]
            mean = [m.summary(metric, t)[0] for t in dts]
            se = [m.summary(metric, t)[1] for t in dts]
            ax.errorbar(dts[1:], mean[1:], yerr=se[1:], marker="o", color="C0", label="drift")
            ax.errorbar([0], mean[:1], yerr=se[:1], marker="s", color="C1", label="control (Δt=0)")
            if extra:
                ax.plot(dts, [m.summary(extra, t)[0] for t in dts], "k--", lw=1, label="chance")
            ax.set_xlabel("Δt [sessions]")
            if j == 0:
                ax.set_ylabel(label)
            if i == 0:
                ax.set_title(name, fontsize=9)
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_figures(measurements: dict, out: str, prefix: str = "") -> list:
    """Both figures into folder ``out``; returns their paths."""
    os.makedirs(out, exist_ok=True)
    return [plot_pc_resolved(measurements, os.path.join(out, f"{prefix}drift_vs_variance_per_pc.png")),
            plot_vs_dt(measurements, os.path.join(out, f"{prefix}metrics_vs_dt.png"))]
