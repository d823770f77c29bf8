"""Long runs of the relu network: chunked compiled loop, checkpoints, resume, divergence stop.

What: ``build(cfg)`` assembles loss, noise, learner and the compiled chunk
function from a :class:`~flatland.config.RunConfig`; ``run(cfg, out, ...)``
advances the run chunk by chunk (one chunk = ``snapshot_every`` steps inside one
compiled ``scan`` per seed — or one ``jit(vmap(scan))`` over seeds with
``[run] ensemble = "vmap"`` — metrics logged every ``log_every`` steps inside it), and
between chunks writes metrics rows, rate-map/Hessian snapshots and, every
``checkpoint_every`` steps, an atomic checkpoint.

Why resume is bit-for-bit: the chunk boundaries are fixed by the config, the key
of chunk c is ``fold_in(base_key, c + 1)`` (never a key carried across a
restart), the compiled chunk function is the same, and the metrics/hessian CSVs
are truncated back to the byte sizes recorded in the checkpoint before
continuing. A resumed run therefore writes exactly the bytes an uninterrupted
one would.

Divergence: the scan reports the first step at which params stop being finite;
the run stops after that chunk, keeps every logged row (rows after divergence
are NaN), does not checkpoint the bad params and reports the step.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import jax
import jax.numpy as jnp

from . import checkpoint as ckpt
from .assembly import assemble
from .config import RunConfig, to_toml
from .errors import UserError
from .progress import Progress
from .simulate import ensemble, make_runner
from .stepping import as_hyper, make_step

from .config import RUN_DEFAULTS

RUN_METRICS_DEFAULT = tuple(RUN_DEFAULTS["metrics"])
PRNG_IMPL = {"threefry": "threefry2x32", "rbg": "rbg", "unsafe_rbg": "unsafe_rbg"}


@dataclasses.dataclass
class Setup:
    """Everything assembled for one configuration."""

    cfg: RunConfig
    loss: object
    ctx: dict
    noise: object
    learner: object
    hyper: dict
    chunk: Callable          # (keys, params, state, t0) -> Trajectory, batched over seeds
    base_key: jax.Array
    metric_names: tuple
    snap: Callable           # params (batched) -> {active, rate_maps, si}, compiled once


def _create(reg, kind, section: dict, dtype):
    """Create a component; section keys that are factory parameters are options, the rest hyper."""
    name = section["name"]
    entry = reg.entry(kind, name)
    try:
        params = inspect.signature(entry.factory).parameters
    except (TypeError, ValueError):
        params = {}
    opts = {k: v for k, v in section.items() if k != "name" and k in params}
    rest = {k: v for k, v in section.items() if k != "name" and k not in params}
    try:
        comp = entry.factory(**opts)
    except TypeError as exc:
        raise UserError(f"[{kind}] {name}: bad option: {exc}") from None
    try:
        hyper = as_hyper(comp.hyper, rest, dtype=dtype)
    except ValueError as exc:
        raise UserError(f"[{'learner' if kind == 'learners' else 'noise'}] {name}: {exc}") from None
    return comp, hyper


def config_digest(cfg: RunConfig) -> str:
    """Hash of the resolved config without ``run.steps`` (which --steps may extend)."""
    d = cfg.to_dict()
    d["run"] = {k: v for k, v in d["run"].items() if k != "steps"}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


_BUILT: dict = {}


def build(cfg: RunConfig) -> Setup:
    """Assemble the components and the compiled chunk function for ``cfg``.

    Setups are cached per process by :func:`config_digest` (everything but
    ``run.steps``), so a resumed or repeated run in the same process reuses the
    compiled chunk instead of compiling it again.
    """
    key = config_digest(cfg)
    if key not in _BUILT:
        if len(_BUILT) >= 8:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[key] = _build(cfg)
    return dataclasses.replace(_BUILT[key], cfg=cfg)


def _build(cfg: RunConfig) -> Setup:
    from flatland_plugins.relu import metrics as M
    from flatland_plugins.relu.network import DTYPES

    reg = assemble().registry
    try:
        loss = reg.create("losses", cfg.task["name"], **cfg.loss_options())
    except TypeError as exc:
        raise UserError(f"[task] {cfg.task['name']}: bad option: {exc}") from None
    ctx = loss.extras.get("relu") if hasattr(loss, "extras") else None
    if ctx is None:
        raise UserError(f"[task] {cfg.task['name']!r} is not a relu-network task (flatland run needs one)")
    dtype = DTYPES[ctx["spec"].dtype]
    noise, nh = _create(reg, "noise", cfg.noise, dtype)
    learner, lh = _create(reg, "learners", cfg.learner, dtype)
    hyper = {"learner": lh, "noise": nh}
    names = tuple(cfg.run["metrics"])
    if ctx["place"] is None and names == RUN_METRICS_DEFAULT:  # defaults on a task without positions
        names = tuple(n for n in names if n not in ("si", "si_corrected", "place_cells"))
    for n in names:
        if n not in M.FUNCS:
            raise UserError(f"[run] unknown in-loop metric {n!r} (known: {', '.join(M.FUNCS)})")
        if n in ("si", "si_corrected", "place_cells") and ctx["place"] is None:
            raise UserError(f"[run] metric {n} needs positions; task {cfg.task['name']!r} has none")
    if cfg.run["step"] == "sparse":
        from flatland_plugins.relu.sparse import make_sparse_step
        step = make_sparse_step(loss, noise, learner)
    else:
        step = make_step(loss, noise, learner)
    run = make_runner(step, cfg.run["snapshot_every"], every=cfg.run["log_every"],
                      record=M.make_record(ctx, names))
    if cfg.run["ensemble"] == "loop":
        # Seeds one after another through one compiled single-seed chunk: on this CPU that is
        # ~1.6x faster per chain than the vmapped chunk at the Fig 2 size (the batched products
        # of 16 nets do not run faster than 16 single ones; benchmarks/relu_speed.py measures both).
        one = jax.jit(run)

        def chunk(keys, params, state, t0):
            outs = []
            for i in range(keys.shape[0]):
                pick = lambda t, i=i: jax.tree_util.tree_map(lambda a: a[i], t)
                outs.append(one(keys[i], pick(params), pick(state), hyper, t0))
            return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *outs)
    else:
        many = ensemble(run)

        def chunk(keys, params, state, t0):
            return many(keys, params, state, hyper, t0)
    base = jax.random.key(cfg.run["seed"], impl=PRNG_IMPL[cfg.run["prng"]])
    return Setup(cfg, loss, ctx, noise, learner, hyper, chunk, base, names, _snap_fn(ctx))


def _snap_fn(ctx):
    from flatland_plugins.relu import metrics as M
    from flatland_plugins.relu.network import active_units

    def one(p):
        out = {"active": active_units(p, ctx["X"])}
        if ctx["place"] is not None:
            out["rate_maps"] = M.rate_maps(p, ctx)
            out["si"] = M.unit_si(p, ctx)
        return out

    return jax.jit(jax.vmap(one))


def initial_state(setup: Setup):
    """Params and learner state of every seed, with a leading seed axis."""
    S = setup.cfg.run["seeds"]
    keys = jax.random.split(jax.random.fold_in(setup.base_key, 0), S)
    params = jax.vmap(setup.loss.init)(keys)
    state = jax.vmap(lambda p: setup.learner.init(p, setup.hyper["learner"]))(params)
    return params, state


def chunk_keys(setup: Setup, c: int):
    return jax.random.split(jax.random.fold_in(setup.base_key, c + 1), setup.cfg.run["seeds"])


class _Csv:
    """Append-only CSV whose size is recorded in checkpoints (truncated back on resume)."""

    def __init__(self, path: Path, header: list[str]):
        self.path = path
        self.header = header
        if not path.exists():
            path.write_text(",".join(header) + "\n")

    def append(self, rows) -> None:
        with open(self.path, "a") as f:
            for row in rows:
                f.write(",".join(_fmt(v) for v in row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def size(self) -> int:
        return self.path.stat().st_size

    def truncate(self, size: int) -> None:
        with open(self.path, "r+b") as f:
            f.truncate(size)


def _fmt(v) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, str):
        return v
    v = float(v)
    return "nan" if v != v else repr(v)


HESS_COLS = ["step", "seed", "method", "trace", "n_zero", "n_negative", "sum_log", "lambda_max", "tol", "eps_R",
             "active_units", "structural_zeros", "seconds"]


def snapshot(setup: Setup, out: Path, t: int, params, hessian: bool, hess_csv: Optional[_Csv]) -> None:
    """Rate maps, per-unit SI and activity of every seed at step t; Hessian functionals if due."""
    from flatland_plugins.relu import hessian as HS

    ctx = setup.ctx
    arrays = {k: np.asarray(v) for k, v in setup.snap(params).items()}
    method = setup.cfg.run["hessian"]
    if hessian and method != "off":
        rows = []
        for s in range(setup.cfg.run["seeds"]):
            p = jax.tree_util.tree_map(lambda a: np.asarray(a[s]), params)
            t0 = time.perf_counter()
            f = HS.functionals(p, ctx, method=method)
            sec = time.perf_counter() - t0
            arrays[f"eigenvalues_{s}"] = f["eigenvalues"]
            rows.append([t, s, f["method"]] + [f[k] for k in HESS_COLS[3:-1]] + [sec])
        hess_csv.append(rows)
    buf_path = out / "snapshots" / f"step_{t:010d}.npz"
    import io
    buf = io.BytesIO()
    np.savez_compressed(buf, step=np.int64(t), **arrays)
    ckpt.atomic_write_bytes(buf_path, buf.getvalue())


def _hessian_due(cfg, t, final):
    he = cfg.run["hessian_every"]
    return t == 0 or final or (he > 0 and t % he == 0)


def run(cfg: RunConfig, out, resume: bool = False, progress: bool = True, figures: bool = True,
        stop_after: Optional[int] = None) -> dict:
    """Run (or resume) ``cfg`` into folder ``out``; returns the summary dict (also saved as summary.json).

    ``stop_after`` ends the process's work after that many chunks (for tests); the
    run can then be resumed.
    """
    out = Path(out)
    ck_path = out / "checkpoint.npz"
    if ck_path.exists() and not resume:
        raise UserError(f"{out} already holds a run (checkpoint.npz); use --resume to continue it or another --out")
    if resume and not ck_path.exists():
        raise UserError(f"--resume: no checkpoint in {out}")
    out.mkdir(parents=True, exist_ok=True)
    setup = build(cfg)
    digest = config_digest(cfg)
    S, every, snap = cfg.run["seeds"], cfg.run["log_every"], cfg.run["snapshot_every"]
    metrics_csv = _Csv(out / "metrics.csv", ["step", "seed"] + list(setup.metric_names))
    hess_csv = _Csv(out / "hessian.csv", HESS_COLS)
    params, state = initial_state(setup)
    t, c = 0, 0
    if resume:
        (trees, meta) = ckpt.load(ck_path, {"params": params, "state": state})
        if meta["digest"] != digest:
            raise UserError(f"--resume: {out} was run with a different configuration (only run.steps may change)")
        params, state = trees["params"], trees["state"]
        t, c = meta["step"], meta["chunk"]
        metrics_csv.truncate(meta["metrics_bytes"])
        hess_csv.truncate(meta["hessian_bytes"])
    else:
        ckpt.atomic_write_text(out / "config.toml", to_toml(cfg))
        for p in (out / "snapshots").glob("*.npz") if (out / "snapshots").exists() else ():
            p.unlink()
        snapshot(setup, out, 0, params, True, hess_csv)
        _write_checkpoint(ck_path, params, state, 0, 0, setup, digest, metrics_csv, hess_csv)
    total = cfg.run["steps"]
    bar = Progress(total, start=t, label=cfg.task["name"]) if progress else None
    diverged = None
    t_start = time.perf_counter()
    done_chunks = 0
    while t < total:
        tr = setup.chunk(chunk_keys(setup, c), params, state, jnp.asarray(t, jnp.int64))
        recs = {k: np.asarray(v) for k, v in tr.records.items()}
        div = np.asarray(tr.diverged_at)
        steps = t + every * (np.arange(snap // every) + 1)
        rows = [[int(steps[b]), s] + [recs[n][s, b] for n in setup.metric_names]
                for b in range(steps.size) for s in range(S)]
        metrics_csv.append(rows)
        if (div >= 0).any():
            s_bad = int(np.argmax(div >= 0))
            diverged = {"step": int(div[div >= 0].min()), "seed": s_bad}
            break
        params, state = tr.params, tr.state
        t += snap
        c += 1
        final = t >= total
        snapshot(setup, out, t, params, _hessian_due(cfg, t, final), hess_csv)
        if t % cfg.run["checkpoint_every"] == 0 or final:
            _write_checkpoint(ck_path, params, state, t, c, setup, digest, metrics_csv, hess_csv)
        if bar:
            last = {n: float(np.nanmean(recs[n][:, -1])) for n in ("loss_norm", "active_units") if n in recs}
            bar.update(t, "  ".join(f"{k} {v:.3g}" for k, v in last.items()))
        done_chunks += 1
        if stop_after is not None and done_chunks >= stop_after and t < total:
            return {"stopped_at": t}
    if bar:
        bar.close()
    wall = time.perf_counter() - t_start
    summary = summarise(out, cfg, diverged, wall, t)
    ckpt.atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=float))
    if figures:
        from flatland_plugins.relu.figures import make_figures
        make_figures(out)
    return summary


def _write_checkpoint(path, params, state, t, c, setup, digest, metrics_csv, hess_csv):
    meta = {"step": int(t), "chunk": int(c), "digest": digest, "seed": setup.cfg.run["seed"],
            "prng": setup.cfg.run["prng"], "metrics_bytes": metrics_csv.size(), "hessian_bytes": hess_csv.size(),
            "base_key": np.asarray(jax.random.key_data(setup.base_key)).tolist()}
    ckpt.save(path, {"params": params, "state": state}, meta)


def read_csv(path) -> dict:
    """Read one of the run's CSVs into {column: numpy array} (pandas reads them too)."""
    with open(path) as f:
        header = f.readline().strip().split(",")
    if not header or header == [""]:
        return {}
    data = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding=None)
    data = np.atleast_1d(data)
    return {h: np.asarray(data[h]) for h in header}


def summarise(out: Path, cfg: RunConfig, diverged, wall, t) -> dict:
    """Final seed-mean metrics, sparsification timescale and phases."""
    from flatland_plugins.relu.phases import fit_timescale, label_phases

    m = read_csv(out / "metrics.csv")
    summary = {"steps_done": int(t), "diverged": diverged, "wall_seconds": wall, "config": cfg.to_dict()}
    if m and m["step"].size:
        steps = np.unique(m["step"])
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = {k: np.array([np.nanmean(m[k][m["step"] == s]) for s in steps])
                        for k in m if k not in ("step", "seed")}
        summary["final"] = {k: float(v[-1]) for k, v in mean.items()}
        summary["initial_logged"] = {k: float(v[0]) for k, v in mean.items()}
        if "active_units" in mean:
            summary["timescale"] = fit_timescale(steps, mean["active_units"])
            if "loss_norm" in mean:
                summary["phases"] = label_phases(steps, mean["loss_norm"], mean["active_units"])
    return summary
