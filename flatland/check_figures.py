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
        ax.plot(samples[c, :, 0], samples[c, :, 1], lw=0.7, alpha=0.8, color="white",
                label=f"{samples.shape[0]} sampled chains' paths" if c == 0 else None)
        ax.plot(samples[c, -1, 0], samples[c, -1, 1], "o", ms=2.5, color="orange",
                label="their last recorded positions" if c == 0 else None)
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
    ax.legend(loc="upper right", fontsize=7, facecolor="0.55", framealpha=0.9)
    ax.set_xlim(lo[0], hi[0]), ax.set_ylim(lo[1], hi[1])
    s = run.settings
    ax.set_xlabel(names[0]), ax.set_ylabel(names[1] if len(names) > 1 else "")
    if d > 2:   # the picture is a slice: say which
        rest = ", ".join(f"{n} = {v:g}" for n, v in zip(names[2:], center[2:]))
        ax.text(0.01, 0.01, f"slice at {rest} (the start point); paths projected onto ({names[0]}, {names[1]})",
                transform=ax.transAxes, fontsize=7, color="white")
    ax.set_title(f"{s['loss']}: {s['learner']} + {s['noise']} noise, {s['chains']} chains × {s['steps']} steps",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def bars(path, rows) -> None:
    """Every verdict row: measured/predicted ± 1.96 s.e. where the row has a ratio, else its rule and verdict.

    Rows judged against a threshold (a zero prediction, a slope, a correlation's sign) have no ratio to
    draw on a common axis; they are written out with their pass rule instead of being drawn as if the
    threshold were a prediction.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 0.34 * max(len(rows), 3) + 1.4), dpi=110)
    y = np.arange(len(rows))
    colour = lambda r: "tab:gray" if r.passed is None else "tab:green" if r.passed else "tab:red"  # noqa: E731
    word = lambda r: "NOT JUDGED" if r.passed is None else "PASS" if r.passed else "FAIL"  # noqa: E731
    drawn = []
    for i, r in enumerate(rows):
        ratio, se = r.ratio, r.ratio_stderr
        if ratio is not None and se is not None and np.isfinite(ratio) and np.isfinite(se):
            ax.errorbar(ratio, i, xerr=1.96 * se, fmt="o", ms=4, color=colour(r), capsize=2, elinewidth=1)
            drawn.append(ratio)
    lo, hi = (min(drawn + [1.0]), max(drawn + [1.0])) if drawn else (0.5, 1.5)
    pad = max(0.05, 0.15 * (hi - lo))
    ax.set_xlim(lo - pad, hi + pad)
    for i, r in enumerate(rows):
        if r.ratio is None or not np.isfinite(r.ratio):
            rule = r.tolerance if len(r.tolerance) <= 70 else r.tolerance[:67] + "…"
            ax.text(lo - pad * 0.95, i, f"{word(r)} — no ratio; rule: {rule}", va="center",
                    fontsize=6.5, color=colour(r))
    ax.axvline(1.0, color="k", lw=0.8, label="measured = predicted")
    ax.set_yticks(y, [r.name for r in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("measured / predicted  (dots: ± 1.96 s.e.; green PASS, red FAIL by the row's rule)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Verdict rows of this run (tolerances in table.txt)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
