"""The ReLU network's run extension: rate maps, Hessian rows, phases, Fig 2 figures, sparse step.

What ``flatland run`` adds for a task whose loss carries ``extras["relu"]``
(corridor, circular-track, random-mapping, smoothed-mapping), configured by the
``[relu]`` table:

* ``step = "dense" | "sparse"`` — the sparse step (:mod:`.sparse`; any learner, noise that leaves the
  objective alone) instead of the composed one: the same trajectory to round-off, faster once units die;
* ``hessian = "gauss-newton" | "full" | "lanczos" | "slq" | "off"`` and
  ``hessian_every`` (0: first and last snapshot only; else a multiple of
  ``snapshot_every``) — Hessian functionals per seed into ``hessian.csv`` and
  the nonzero spectrum into the snapshot;
* every snapshot: active units, and for a task with positions the rate maps
  and per-unit SI of every seed (``snapshots/step_*.npz``);
* after the run: the sparsification timescale and the three phases from the
  logged ``active_units`` / ``loss_norm`` (when logged), and the Fig 2 figures.
"""
from __future__ import annotations

import time

import numpy as np
import jax

from flatland import RunExtension, Snapshot, UserError

HESSIAN_METHODS = ("gauss-newton", "full", "lanczos", "slq", "off")
STEPS = ("dense", "sparse")
HESS_COLS = ("step", "seed", "method", "trace", "n_zero", "n_negative", "sum_log", "lambda_max", "tol", "eps_R",
             "active_units", "structural_zeros", "exact_null", "seconds")


def _snap_fn(ctx):
    """jit(vmap) of active units, rate maps and per-unit SI (rate maps/SI only with positions)."""
    from . import metrics as M
    from .network import active_units

    def one(p):
        out = {"active": active_units(p, ctx["X"])}
        if ctx["place"] is not None:
            out["rate_maps"] = M.rate_maps(p, ctx)
            out["si"] = M.unit_si(p, ctx)
        return out

    return jax.jit(jax.vmap(one))


def _hessian_report(ctx) -> dict:
    """Seed means of the first and last hessian.csv rows: zero count and nonzero fraction 1 − n_zero/P.

    The eLife sweep compares the fraction of nonzero Hessian eigenvalues with the
    fraction of active units; with ``hessian = "gauss-newton"`` the zero count is
    capped by the Gauss–Newton rank, so ``method`` goes into the report too.
    """
    from flatland import read_csv

    path = None if ctx.out is None else ctx.out / "hessian.csv"
    rows = read_csv(path) if path is not None and path.exists() else {}
    if not rows or np.asarray(rows["step"]).size == 0:
        return {}
    steps = np.atleast_1d(rows["step"])
    P = ctx.loss.extras["relu"]["spec"].n_params
    out = {"n_params": int(P), "method": str(np.atleast_1d(rows["method"])[-1])}
    for name, at in (("initial", steps.min()), ("final", steps.max())):
        pick = steps == at
        zero = float(np.mean(np.atleast_1d(rows["n_zero"])[pick]))
        out |= {f"{name}_step": int(at), f"{name}_n_zero": zero, f"{name}_nonzero_fraction": 1 - zero / P,
                f"{name}_exact_null": float(np.mean(np.atleast_1d(rows["exact_null"])[pick]))}
    return out


class ReluRun(RunExtension):
    """See the module doc."""

    name = "relu"
    section = "relu"
    options = {"step": "dense", "hessian": "gauss-newton", "hessian_every": 0}
    tables = {"hessian.csv": HESS_COLS}

    def applies(self, loss) -> bool:
        return "relu" in (getattr(loss, "extras", None) or {})

    def check(self, ctx) -> None:
        o = ctx.options
        for key, allowed in (("step", STEPS), ("hessian", HESSIAN_METHODS)):
            if o[key] not in allowed:
                raise UserError(f"[relu] {key} must be one of {', '.join(allowed)}, got {o[key]!r}")
        he, snap = o["hessian_every"], ctx.run["snapshot_every"]
        if he < 0 or he % snap:
            raise UserError(f"[relu] hessian_every ({he}) must be 0 or a multiple of snapshot_every ({snap})")

    def step(self, ctx, noise, learner):
        if ctx.options["step"] != "sparse":
            return None
        from .sparse import make_sparse_step
        return make_sparse_step(ctx.loss, noise, learner)

    def snapshot(self, ctx, t, params, final) -> Snapshot:
        from .hessian import functionals

        relu = ctx.loss.extras["relu"]
        if "snap" not in ctx.cache:
            ctx.cache["snap"] = _snap_fn(relu)
        arrays = {k: np.asarray(v) for k, v in ctx.cache["snap"](params).items()}
        method, he = ctx.options["hessian"], ctx.options["hessian_every"]
        rows = []
        if method != "off" and (t == 0 or final or (he > 0 and t % he == 0)):
            for s in range(ctx.run["seeds"]):
                p = jax.tree_util.tree_map(lambda a: np.asarray(a[s]), params)
                t0 = time.perf_counter()
                f = functionals(p, relu, method=method)
                sec = time.perf_counter() - t0
                arrays[f"eigenvalues_{s}"] = f["eigenvalues"]
                rows.append([t, s, f["method"]] + [f.get(k, float("nan")) for k in HESS_COLS[3:-1]] + [sec])
        return Snapshot(arrays=arrays, rows={"hessian.csv": rows} if rows else {})

    def report(self, ctx, summary, curves) -> dict:
        from .phases import fit_timescale, label_phases

        if "active_units" not in curves:
            return {}
        ts = fit_timescale(curves["step"], curves["active_units"])
        out = {"timescale": ts, "notes": ["sparsification timescale: " + (
            f"τ = {ts['tau']:.4g} steps (R² {ts['r2']:.2f})" if ts["ok"] else f"fit failed: {ts['reason']}")]}
        if "loss_norm" in curves:
            out["phases"] = label_phases(curves["step"], curves["loss_norm"], curves["active_units"])
        hess = _hessian_report(ctx)
        if hess:
            out["hessian"] = hess
        return out

    def figures(self, ctx, out) -> list:
        from .figures import make_figures
        return make_figures(out)

    def sweep_report(self, table, out):
        from .sweep_claims import section
        return section(table, out)
