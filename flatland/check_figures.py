"""PNG figures for ``flatland check`` (matplotlib, Agg backend; no display needed).

* ``landscape`` — the paper's Fig 5A view: log-loss contours of the valley in
  its first two coordinates (others held at the start point), a few sample
  trajectories, and the theory's predicted drift field drawn as arrows at
  points of Γ (exact directions; lengths ∝ |v| relative to the median, clipped).
* ``bars`` — measured vs predicted for every verdict row, each normalised by
  its prediction (or by its tolerance when the prediction is 0), with
  95% error bars (±1.96 s.e.).
"""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def landscape(path, loss, measured) -> None:
    """Contours + sample trajectories + predicted drift arrows for one ``lab.Measured``."""
    import jax
    import jax.numpy as jnp

    from .estimators import normal_rank, project_to_manifold

    plt = _plt()
    run = measured.run
    samples = run.samples[0]  # (chains, records, d)
    d = samples.shape[-1]
    names = list(getattr(measured.problem, "variables", ())) or [f"θ{i}" for i in range(d)]
    center = np.asarray(run.settings["point"], float)
    xy = samples[..., :2].reshape(-1, 2)
    half = max(1.3 * float(np.abs(xy - center[:2]).max()), 0.6 * (1 + float(np.abs(center[:2]).max())))
    lo, hi = center[:2] - half, center[:2] + half
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 160), np.linspace(lo[1], hi[1], 160))
    pts = np.tile(center, (gx.size, 1))
    pts[:, 0], pts[:, 1] = gx.ravel(), gy.ravel()
    L = np.asarray(jax.jit(jax.vmap(lambda t: loss(t)))(jnp.asarray(pts))).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(6.4, 5.4), dpi=110)
    cs = ax.contourf(gx, gy, np.log10(np.maximum(L, 0) + 1e-10), levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="log10 L")
    for c in range(samples.shape[0]):
        ax.plot(samples[c, :, 0], samples[c, :, 1], lw=0.7, alpha=0.8, color="white")
        ax.plot(samples[c, -1, 0], samples[c, -1, 1], "o", ms=2.5, color="orange")
    ax.plot(center[0], center[1], "+", ms=10, color="red", label="start (on Γ)")
    if measured.field is not None:
        # arrows at points of Γ: a line through the start point, projected onto Γ
        line = np.tile(center, (15, 1))
        line[:, 0] = np.linspace(lo[0] + 0.1 * half, hi[0] - 0.1 * half, 15)
        line[:, 1] = center[1] + 0.05 * half
        rank = None if loss.residuals is not None else normal_rank(loss, center, lambda f: f)
        on = jax.vmap(lambda t: project_to_manifold(loss, t, lambda f: f, rank=rank))(jnp.asarray(line))
        v = np.asarray(jax.vmap(measured.field)(on))[:, :2]
        on = np.asarray(on)[:, :2]
        ok = np.all(np.isfinite(v), 1) & np.all(np.isfinite(on), 1) & np.all((on >= lo) & (on <= hi), 1)
        mag = np.linalg.norm(v, axis=1)
        ok &= mag > 0
        if ok.any():
            # direction exactly; length ∝ |v| relative to the median, clipped to [0.3, 2] (the drift ∝ 1/x
            # near a degenerate point would otherwise dwarf the rest)
            scale = np.clip(mag / np.median(mag[ok]), 0.3, 2.0)
            v = v / np.where(mag > 0, mag, 1)[:, None] * (0.08 * half * scale)[:, None]
            ax.quiver(on[ok, 0], on[ok, 1], v[ok, 0], v[ok, 1], color="red", angles="xy", scale_units="xy", scale=1,
                      width=0.006, label="predicted drift on Γ (finite-η; length ∝ |v|, clipped)")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_xlim(lo[0], hi[0]), ax.set_ylim(lo[1], hi[1])
    s = run.settings
    ax.set_xlabel(names[0]), ax.set_ylabel(names[1] if len(names) > 1 else "")
    ax.set_title(f"{s['loss']}: {s['learner']} + {s['noise']} noise, {s['chains']} chains × {s['steps']} steps",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def bars(path, rows) -> None:
    """Measured vs predicted per verdict row, normalised, with 95% error bars."""
    plt = _plt()
    names, pred, meas, err, ok = [], [], [], [], []
    for r in rows:
        p, m, se = r.predicted, r.measured, r.stderr
        if not all(np.isfinite(v) for v in (p, m, se)):
            continue
        scale = abs(p) if p != 0 else max(abs(m), 1e-300)
        names.append(r.name), pred.append(p / scale), meas.append(m / scale), err.append(1.96 * se / scale)
        ok.append(r.passed)
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * max(len(names), 3) + 1.2), dpi=110)
    y = np.arange(len(names))
    ax.barh(y + 0.2, pred, height=0.38, color="0.75", label="predicted (finite-η)")
    ax.barh(y - 0.2, meas, height=0.38, xerr=err, color=["tab:green" if o else "tab:red" for o in ok],
            error_kw={"elinewidth": 1, "capsize": 2}, label="measured ± 1.96 s.e.")
    ax.set_yticks(y, names, fontsize=7)
    ax.axvline(0, color="k", lw=0.6)
    ax.invert_yaxis()
    ax.set_xlabel("value / |prediction|")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
