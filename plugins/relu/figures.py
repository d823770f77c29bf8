"""PNG figures of a ``flatland run`` folder (the paper's Fig 2 panels and Hessian spectra).

What: ``make_figures(out)`` reads ``metrics.csv``, ``hessian.csv`` and
``snapshots/*.npz`` and writes into ``out/figures``:

* ``fig2bc_curves.png`` — normalised loss (log), fraction of active units,
  active fraction and mean SI over training (seed mean, each seed faint);
* ``fig2d_ratemaps.png`` — rate maps of the place cells of seed 0 at four
  snapshot times (from 10% of the run to its end, as the public code picks
  them); row i is sorted by the units' peak positions at time i, column j is
  time j, each map normalised to its maximum;
* ``fig2e_correlation.png`` — mean Pearson r of the units' (smoothed) rate maps
  between every pair of snapshot times (units that are place cells at both);
* ``hessian_spectra.png`` — histograms of log10 of the nonzero Hessian
  eigenvalues at each Hessian snapshot (seed 0), with the zero count.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _load_snapshots(out: Path):
    snaps = []
    for f in sorted((out / "snapshots").glob("step_*.npz")):
        with np.load(f) as z:
            snaps.append({k: z[k] for k in z.files})
    return snaps


LABELS = {"loss_norm": "loss / loss at step 0", "active_units": "fraction of units\nactive anywhere",
          "active_fraction": "active fraction\n(of positions × units)", "si": "mean SI\n(bits, place cells)",
          "si_corrected": "SI − shuffle SI\n(bits)", "si_probe_corrected": "probe SI − shuffle\n(bits)",
          "hess_trace": "tr H"}


def _running(y: np.ndarray, w: int):
    """Running median and 10–90% quantiles of y over windows of w points (edges: shorter windows)."""
    y = np.asarray(y, float)
    if y.size < 3 or w < 3:
        return y, y, y
    h = w // 2
    pad = np.pad(y, h, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * h + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(win, 1), np.nanquantile(win, 0.1, 1), np.nanquantile(win, 0.9, 1)


def curves(out: Path, plt):
    from flatland import read_csv
    m = read_csv(out / "metrics.csv")
    if not m or m["step"].size == 0:
        return None
    names = ("loss_norm", "active_units", "active_fraction", "si", "si_corrected", "si_probe_corrected", "hess_trace")
    panels = [k for k in names if k in m]
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.4, 1.8 * len(panels) + 0.4), sharex=True)
    axes = np.atleast_1d(axes)
    seeds = np.unique(m["seed"])
    steps = np.unique(m["step"])
    w = max(3, steps.size // 40)          # the loss is noisy from step to step: show a running median and band
    for ax, k in zip(axes, panels):
        with warnings.catch_warnings():          # a step where every seed is NaN (after divergence): NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.array([np.nanmean(m[k][m["step"] == s]) for s in steps])
        for s in seeds:
            sel = m["seed"] == s
            ax.plot(m["step"][sel], _running(m[k][sel], w)[0], lw=0.7, alpha=0.6,
                    label=f"seed {int(s)}" if len(seeds) <= 8 else None)
        med, lo, hi = _running(mean, w)
        ax.fill_between(steps, lo, hi, color="0.6", alpha=0.35, lw=0, label="seed mean: 10–90% over the window")
        ax.plot(steps, med, color="k", lw=1.3, label="seed mean: running median")
        if k in ("loss_norm", "hess_trace") and np.any(np.isfinite(mean) & (mean > 0)):   # all NaN: diverged at once
            ax.set_yscale("log")
        ax.set_ylabel(LABELS.get(k, k.replace("_", " ")), fontsize=8)
    axes[0].legend(fontsize=6, ncol=2, loc="best")
    axes[-1].set_xlabel("training step")
    fig.suptitle(f"training curves, {len(seeds)} seed(s); running medians over {w} logged points", fontsize=9)
    fig.tight_layout()
    return fig


def ratemaps(snaps, plt):
    snaps = [s for s in snaps if "rate_maps" in s]
    if len(snaps) < 2:
        return None
    S = len(snaps)
    pick = np.unique(np.linspace(0.1 * S, S - 1, 4).astype(int))
    fig, axes = plt.subplots(len(pick), len(pick), figsize=(1.6 * len(pick) + 1, 1.6 * len(pick) + 0.5), squeeze=False)
    im = None
    for i, a in enumerate(pick):
        maps_a, si_a = snaps[a]["rate_maps"][0], snaps[a]["si"][0]
        place = np.nonzero(np.nan_to_num(si_a) > 0.01)[0]
        order = place[np.argsort(np.argmax(maps_a[place], axis=1))]
        for j, b in enumerate(pick):
            ax = axes[i, j]
            mp = snaps[b]["rate_maps"][0][order]
            nb = mp.shape[1]
            if i == 0:
                ax.set_title(f"step {int(snaps[b]['step']):,}", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"sorted @{int(snaps[a]['step']):,}", fontsize=6)
            if not len(order):   # nothing to sort by: say so instead of drawing an empty image
                ax.text(0.5, 0.5, "no place cells", ha="center", va="center", fontsize=6, transform=ax.transAxes)
                ax.set_xlim(-0.5, nb - 0.5)
            else:
                mx = mp.max(1, keepdims=True)
                im = ax.imshow(np.divide(mp, mx, out=np.zeros_like(mp), where=mx > 0), aspect="auto",
                               interpolation="nearest", cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([0, nb // 2, nb - 1] if i == len(pick) - 1 else [])
            if i == len(pick) - 1:
                ax.set_xticklabels(["0", "end|start", "0"], fontsize=5)
            ax.set_yticks([0, len(order) - 1] if j == 0 and len(order) else [])
    fig.suptitle("rate maps (seed 0), place cells; x: position bins, first running one way, then back\n"
                 "row block i: cells sorted by their peak at the step on its label; column j: maps at step j",
                 fontsize=7)
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.6, label="rate / cell's max at that step")
    return fig


def correlation(snaps, plt):
    from .metrics import ratemap_correlation
    snaps = [s for s in snaps if "rate_maps" in s]
    if len(snaps) < 2:
        return None
    maps = np.stack([s["rate_maps"][0] for s in snaps])
    place = np.stack([np.nan_to_num(s["si"][0]) > 0.01 for s in snaps])
    n_bins = maps.shape[-1]
    C = ratemap_correlation(maps, place, sigma_bins=0.06 * n_bins)
    fig, ax = plt.subplots(figsize=(4, 3.4))
    steps = [int(s["step"]) for s in snaps]
    im = ax.imshow(C, vmin=-1, vmax=1, cmap="viridis", extent=[steps[0], steps[-1], steps[-1], steps[0]])
    fig.colorbar(im, ax=ax, label="Pearson r")
    ax.set_xlabel("training step")
    ax.set_ylabel("training step")
    ax.set_title("rate-map correlation (seed 0)", fontsize=9)
    fig.tight_layout()
    return fig


def spectra(snaps, out: Path, plt):
    from flatland import read_csv
    hs = [s for s in snaps if "eigenvalues_0" in s]
    if not hs:
        return None
    h = read_csv(out / "hessian.csv") if (out / "hessian.csv").exists() else {}
    fig, ax = plt.subplots(figsize=(6, 3))
    cmap = plt.get_cmap("viridis")
    zeros = {}
    if h:
        for s in hs:
            sel = (h["step"] == int(s["step"])) & (h["seed"] == 0)
            if sel.any():
                zeros[int(s["step"])] = int(h["n_zero"][sel][0])
    same = len(set(zeros.values())) == 1 and len(zeros) == len(hs)
    for i, s in enumerate(hs):
        e = s["eigenvalues_0"]
        e = e[e > 0]
        step = int(s["step"])
        nz = f", {zeros[step]:,} zero" if step in zeros and not same else ""
        if e.size:
            ax.hist(np.log10(e), bins=60, histtype="step", color=cmap(i / max(len(hs) - 1, 1)),
                    label=f"step {step:,}{nz}")
    ax.set_xlabel("log10 eigenvalue (nonzero part of the spectrum)")
    ax.set_ylabel("count")
    ax.legend(fontsize=6)
    title = "Hessian spectra (seed 0)"
    if same:   # e.g. the Gauss–Newton matrix's rank bound: the same at every step, so said once
        title += f"; {next(iter(zeros.values())):,} zero eigenvalues at every snapshot (not drawn)"
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


CAPTIONS = {
    "fig2bc_curves.png": "training curves against the step (Ratzon et al. 2024, Fig 2B–C): normalised loss (log "
                         "axis), active units, active fraction, spatial information where logged; each seed a "
                         "thin line, the seed mean as a running median (black) with its 10–90% band over the "
                         "window (grey).",
    "fig2d_ratemaps.png": "rate maps of seed 0's place cells (Fig 2D) at four snapshot steps; block row i sorts "
                          "the cells by their peak at step i, column j shows the maps at step j; x: position "
                          "bins (out, then back); each map scaled to its maximum (colour bar).",
    "fig2e_correlation.png": "Pearson correlation of the smoothed rate maps between every pair of snapshot steps "
                             "(Fig 2E), averaged over cells that are place cells at both steps (seed 0).",
    "hessian_spectra.png": "histograms of log10 of the nonzero Hessian eigenvalues at each Hessian snapshot (seed "
                           "0); the zero count (|λ| ≤ the stated tolerance) is given in the legend or the title.",
}


def make_figures(out) -> list:
    """Write every figure the run's data allows; returns ``(path, caption)`` pairs."""
    out = Path(out)
    plt = _plt()
    fdir = out / "figures"
    fdir.mkdir(exist_ok=True)
    snaps = _load_snapshots(out)
    written = []
    for name, fig in (("fig2bc_curves.png", curves(out, plt)), ("fig2d_ratemaps.png", ratemaps(snaps, plt)),
                      ("fig2e_correlation.png", correlation(snaps, plt)),
                      ("hessian_spectra.png", spectra(snaps, out, plt))):
        if fig is not None:
            fig.savefig(fdir / name, dpi=130)
            plt.close(fig)
            written.append((fdir / name, CAPTIONS[name]))
    return written
