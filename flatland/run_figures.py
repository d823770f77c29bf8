"""The generic figure of a ``flatland run`` folder: every logged metric against the step.

What: ``metrics_figure(out)`` reads ``metrics.csv`` and writes
``figures/metrics.png`` — one panel per metric column, each seed a thin line and
the seed mean a black one, axes labelled (step; metric name). A metric whose
values are all positive and span more than two decades gets a log axis.
Extensions add task-specific figures beside it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .run_files import read_csv


METRICS_CAPTION = ("every logged metric against the training step, one panel each: each seed a thin line, the "
                   "seed mean black; a positive metric spanning more than two decades on a log axis.")


def metrics_figure(out) -> Path | None:
    """Write ``out/figures/metrics.png``; None when nothing was logged."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    m = read_csv(out / "metrics.csv")
    cols = [k for k in m if k not in ("step", "seed")]
    if not cols or m["step"].size == 0:
        return None
    steps = np.unique(m["step"])
    seeds = np.unique(m["seed"])
    fig, axes = plt.subplots(len(cols), 1, figsize=(6, 1.2 + 1.6 * len(cols)), sharex=True, squeeze=False)
    for ax, k in zip(axes[:, 0], cols):
        y = np.asarray(m[k], float)
        for s in seeds:
            sel = m["seed"] == s
            ax.plot(m["step"][sel], y[sel], lw=0.6, alpha=0.5, label=f"seed {int(s)}" if len(seeds) <= 8 else None)
        with np.errstate(all="ignore"):
            mean = np.array([np.nanmean(y[m["step"] == s]) if np.isfinite(y[m["step"] == s]).any() else np.nan
                             for s in steps])
        ax.plot(steps, mean, color="k", lw=1.2, label="seed mean")
        fin = y[np.isfinite(y)]
        if fin.size and fin.min() > 0 and fin.max() > 100 * fin.min():
            ax.set_yscale("log")
        ax.set_ylabel(k, fontsize=8)
    axes[0, 0].legend(fontsize=6, ncol=3)
    axes[-1, 0].set_xlabel("training step")
    fig.suptitle(f"metrics per seed ({out.name})", fontsize=9)
    fig.tight_layout()
    fdir = out / "figures"
    fdir.mkdir(exist_ok=True)
    path = fdir / "metrics.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
