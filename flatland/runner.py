"""Long runs of any registered task: chunked compiled loop, checkpoints, resume, divergence stop.

What: ``build(cfg)`` assembles the loss, noise model, learner, the registered
metrics named in ``[run] metrics`` and the run extensions that apply to the
loss (:mod:`flatland.extensions`), and compiles the chunk function;
``run(cfg, out, ...)`` advances the run chunk by chunk — one chunk =
``snapshot_every`` steps inside one compiled ``scan`` per seed (or one
``jit(vmap(scan))`` over seeds with ``[run] ensemble = "vmap"``), metrics logged
every ``log_every`` steps inside it — and between chunks writes metric rows,
the extensions' snapshots and, every ``checkpoint_every`` steps, an atomic
checkpoint.

Steps that are not a multiple of ``snapshot_every``: the last chunk is shorter.
It is run by a second compiled function of that length (compiled once, when
reached; no padding, so no wasted steps), and its final step is always logged
even when it is not a multiple of ``log_every``.

Why resume is bit-for-bit: chunk boundaries are multiples of
``snapshot_every``; the key of the chunk holding step t is
``fold_in(base_key, t // snapshot_every + 1)`` and step t inside it uses
``fold_in(chunk_key, t)`` (never a key carried across a restart); the compiled
functions are the same; and metrics.csv and the extensions' CSVs are truncated
back to the byte sizes recorded in the checkpoint before continuing.

Divergence: the scan reports the first step at which params stop being finite;
the run stops after that chunk, keeps every logged row (rows after divergence
are NaN), does not checkpoint the bad params and reports the step.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import jax
import jax.numpy as jnp

from . import checkpoint as ckpt
from .config import RunConfig, load as load_config, to_toml
from .errors import UserError
from .folder_lock import LOCK_NAME, folder_lock
from .progress import Progress
from . import run_build
from .run_build import (PRNG_IMPL, Setup, build_setup, chunk_keys, initial_state,  # noqa: F401  (re-exported)
                        rebind, structure_key)
from .results import write_captions
from .run_figures import METRICS_CAPTION, metrics_figure
from .run_files import Csv, read_csv, write_versions  # noqa: F401  (read_csv re-exported)


def config_digest(cfg: RunConfig) -> str:
    """Hash of the resolved config without ``run.steps`` (which --steps may extend). ``run.ensemble`` enters
    as the mode it resolves to here, so a run begun with the old default "loop" resumes under "auto" on a CPU."""
    return hashlib.sha256(json.dumps(_compared(cfg.to_dict()), sort_keys=True).encode()).hexdigest()[:16]


def _compared(d: dict) -> dict:
    """The resolved config as resume compares it (:func:`config_digest`)."""
    d = {s: dict(t) for s, t in d.items()}
    d["run"] = {k: v for k, v in d["run"].items() if k != "steps"}
    if "ensemble" in d["run"]:
        d["run"]["ensemble"] = run_build.ensemble_mode(d["run"]["ensemble"])
    return d


def config_changes(out: Path, cfg: RunConfig) -> str:
    """``"noise.sigma 0.003 → 0.004, …"``: where ``cfg`` differs from the folder's config.toml ("" if unreadable)."""
    import tomllib

    try:
        old = _compared(tomllib.loads((out / "config.toml").read_text()))
    except (OSError, ValueError):
        return ""
    new = _compared(cfg.to_dict())
    keys = sorted({(s, k) for d in (old, new) for s, t in d.items() if isinstance(t, dict) for k in t})
    missing = "(not set)"
    return ", ".join(f"{s}.{k} {old.get(s, {}).get(k, missing)!r} → {new.get(s, {}).get(k, missing)!r}"
                     for s, k in keys if old.get(s, {}).get(k, missing) != new.get(s, {}).get(k, missing))


_BUILT: dict = {}


def build(cfg: RunConfig) -> Setup:
    """Assemble the components and the compiled chunk functions for ``cfg``.

    Setups are cached per process by :func:`~flatland.run_build.structure_key`
    (the config without hyperparameter values, seed and steps): a resumed or
    repeated run, or a sweep point that differs from an earlier one only in
    learning rate, noise scale or seed, reuses the compiled chunks instead of
    compiling them again (hyperparameters and keys are arguments of the chunk).
    ``setup.cfg`` is the resolved config (extension tables with their defaults filled).
    """
    asm = run_build.assemble()
    key = structure_key(cfg, asm.registry)
    if key not in _BUILT:
        if len(_BUILT) >= 8:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[key] = build_setup(cfg, asm)
    return rebind(_BUILT[key], cfg, asm.registry)


def segments(t: int, end: int, every: int) -> list:
    """Split steps [t, end) into (n_steps, log_every) pieces whose records fall on multiples of
    ``every`` and on ``end``: a head up to the next multiple, whole blocks, a shorter tail."""
    out = []
    head = min((-t) % every, end - t)
    if head:
        out.append((head, head))
    mid = (end - t - head) // every * every
    if mid:
        out.append((mid, every))
    tail = end - t - head - mid
    if tail:
        out.append((tail, tail))
    return out


def advance(setup: Setup, t: int, end: int, params, state):
    """Steps [t, end) of the chunk holding step t: (params, state, records, record steps, diverged_at)."""
    keys = chunk_keys(setup, t // setup.cfg.run["snapshot_every"])
    recs, steps, div = [], [], None
    for n, every in segments(t, end, setup.cfg.run["log_every"]):
        tr = setup.chunk(keys, params, state, jnp.asarray(t, jnp.int64), n=n, every=every)
        recs.append(tr.records)
        steps.append(t + every * (np.arange(n // every) + 1))
        d = np.asarray(tr.diverged_at)
        div = d if div is None else np.where(div >= 0, div, d)
        params, state, t = tr.params, tr.state, t + n
    records = jax.tree_util.tree_map(lambda *a: np.concatenate([np.asarray(x) for x in a], axis=1), *recs)
    return params, state, records, np.concatenate(steps), div


class _Files:
    """metrics.csv and the extensions' CSVs, with their sizes for checkpoints."""

    def __init__(self, out: Path, setup: Setup):
        self.metrics = Csv(out / "metrics.csv", ["step", "seed"] + list(setup.columns))
        self.tables = {f: Csv(out / f, cols) for ext in setup.extensions for f, cols in ext.tables.items()}

    def sizes(self) -> dict:
        return {"metrics.csv": self.metrics.size()} | {f: c.size() for f, c in self.tables.items()}

    def truncate(self, sizes: dict) -> None:
        """Back to the sizes the checkpoint recorded; a file shorter than that lost rows the run cannot redo
        (resuming padded it with zero bytes and crashed at the end)."""
        files = {"metrics.csv": self.metrics} | self.tables
        for f, c in files.items():
            if c.size() < sizes[f]:
                raise UserError(f"--resume: {c.path} is shorter ({c.size():,} bytes) than when the checkpoint was "
                                f"written ({sizes[f]:,}): rows the run logged are gone; start it again in a new folder")
        for f, c in files.items():
            c.truncate(sizes[f])


def snapshot(setup: Setup, out: Path, files: _Files, t: int, params, final: bool) -> None:
    """Ask every active extension for its snapshot at step t; append its rows, save its arrays."""
    arrays = {}
    for ext, ctx in zip(setup.extensions, setup.contexts):
        snap = ext.snapshot(ctx, t, params, final)
        if snap is None:
            continue
        arrays.update(snap.arrays)
        for fname, rows in snap.rows.items():
            if fname not in files.tables:
                raise RuntimeError(f"run extension {ext.name} wrote rows to undeclared table {fname!r}")
            files.tables[fname].append(rows)
    if arrays:
        buf = io.BytesIO()
        np.savez_compressed(buf, step=np.int64(t), **{k: np.asarray(v) for k, v in arrays.items()})
        ckpt.atomic_write_bytes(out / "snapshots" / f"step_{t:010d}.npz", buf.getvalue())


def _metric_rows(setup: Setup, records: dict, steps) -> list:
    """One row per (logged step, seed): the scalar columns in ``setup.columns`` order."""
    cols = [setup.column_of[c](records) for c in setup.columns]
    S = setup.cfg.run["seeds"]
    return [[int(steps[b]), s] + [col[s, b] for col in cols] for b in range(len(steps)) for s in range(S)]


def _before(records: dict, steps, diverged_at: int):
    """The records logged up to step ``diverged_at`` (whose params were still finite): a diverged
    run keeps what it measured before the divergence, not rows of NaN after it."""
    keep = np.asarray(steps) <= diverged_at
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[:, keep], records), np.asarray(steps)[keep]


def _save_arrays(setup: Setup, out: Path, records: dict, steps, t: int) -> None:
    """Non-scalar metric records of one chunk → ``records/step_<end>.npz`` (seeds, logs, ...)."""
    if not setup.array_metrics or len(steps) == 0:
        return
    buf = io.BytesIO()
    np.savez_compressed(buf, step=np.asarray(steps, np.int64),
                        **{n: np.asarray(records[n]) for n in setup.array_metrics})
    ckpt.atomic_write_bytes(out / "records" / f"step_{t:010d}.npz", buf.getvalue())


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
    restart = resume and not ck_path.exists()   # stopped before its first checkpoint: start again in place
    if restart and not (out / "config.toml").is_file():
        raise UserError(f"--resume: no checkpoint in {out}")
    if not resume:
        _require_empty(out)                      # before the build, to fail fast (a lock is its own message) ...
    setup = build(cfg)
    if restart and not _stopped_before_checkpoint(out, setup.cfg):   # resolved config, as config.toml holds
        raise UserError(f"--resume: no checkpoint in {out}")
    _check_memory(setup)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "run"):
        if restart:
            if not _only_start_files(out, setup):   # a run whose checkpoint was removed: its results are kept
                raise UserError(f"--resume: {out} has no checkpoint.npz but holds more than a run stopped before its "
                                "first checkpoint (its checkpoint was removed?): it cannot be continued, and nothing "
                                "there was touched; give a new --out to start again")
            _clear_start_files(out, setup)
        if not resume or restart:
            _require_empty(out)                  # ... and under the lock, where no other run can slip in
        return _run(setup, out, ck_path, resume and not restart, progress, figures, stop_after)


def _stopped_before_checkpoint(out: Path, cfg: RunConfig) -> bool:
    """Whether the config.toml of ``out`` (a folder without a checkpoint) is ``cfg``'s: a run of it stopped
    before its step-0 checkpoint, with nothing to keep."""
    try:
        return config_digest(load_config(out / "config.toml")) == config_digest(cfg)   # run.steps may differ
    except UserError:
        return False


def _start_file_names(setup: Setup) -> set:
    """The files a run writes before its first checkpoint, beside records/, snapshots/ and figures/."""
    return {"config.toml", "metrics.csv", "versions.json"} | {f for x in setup.extensions for f in x.tables}


def _only_start_files(out: Path, setup: Setup) -> bool:
    """Whether ``out`` holds only what a run writes before its first checkpoint: rows and arrays of step 0
    only, no summary (a finished run whose checkpoint.npz was removed had its metrics and snapshots deleted)."""
    names = _start_file_names(setup) | {LOCK_NAME}
    for p in out.iterdir():
        if p.is_dir() and p.name in ("records", "snapshots"):
            if any(q.name != f"step_{0:010d}.npz" for q in p.iterdir()):
                return False
        elif p.is_dir() and p.name == "figures":
            continue
        elif not (p.is_file() and (p.name in names or p.name.endswith(ckpt.TEMP_SUFFIX))):
            return False
        elif p.suffix == ".csv" and not _step_zero_rows_only(p.read_bytes().splitlines()):
            return False
    return True


def _step_zero_rows_only(lines: list) -> bool:
    """A CSV of a start: its header, and rows of step 0 only (the step-0 snapshot's, e.g. Hessian rows)."""
    return not lines[1:] or (lines[0].split(b",")[0] == b"step" and all(r.split(b",")[0] == b"0" for r in lines[1:]))


def _clear_start_files(out: Path, setup: Setup) -> None:
    """Remove what a run writes before its first checkpoint (its config, CSV headers, step-0 arrays)."""
    import shutil

    ckpt.remove_stale_temps(out)
    names = _start_file_names(setup)
    for p in out.iterdir():
        if p.is_file() and p.name in names:
            p.unlink()
        elif p.is_dir() and p.name in ("records", "snapshots", "figures"):
            shutil.rmtree(p)


#: live copies of params + learner state a chunk holds (carry, new value, gradient/noise draws)
WORKING_COPIES = 4


def _check_memory(setup: Setup) -> None:
    """Refuse, before allocating, a run whose params and state cannot fit in this machine's or its GPU's memory."""
    key = jax.random.key(0)
    p1 = jax.eval_shape(setup.init, key)
    s1 = jax.eval_shape(lambda p: setup.learner.init(p, setup.hyper["learner"]), p1)
    per_seed = sum(a.size * a.dtype.itemsize for a in jax.tree_util.tree_leaves((p1, s1)))
    need = per_seed * setup.cfg.run["seeds"] * WORKING_COPIES
    for where, total in memory_limits():
        if need > 0.8 * total:
            raise UserError(f"this run needs about {need / 2**30:.3g} GiB ({per_seed / 2**20:.3g} MiB of params and "
                            f"learner state per seed × {setup.cfg.run['seeds']} seeds × {WORKING_COPIES} working "
                            f"copies), more than 80% of {where}'s {total / 2**30:.3g} GiB; use fewer seeds or a "
                            "smaller network")


def memory_limits() -> list[tuple[str, int]]:
    """(where, bytes) a run's arrays must fit in: this machine's RAM, and the accelerator's memory when JAX
    computes on one (its allocator's ``bytes_limit``); each left out where it cannot be read."""
    import os

    out = []
    try:
        out.append(("this machine", os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")))
    except (ValueError, OSError, AttributeError):
        pass
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if stats.get("bytes_limit"):
            out.append((f"the {device.platform.upper()} ({device.device_kind})", int(stats["bytes_limit"])))
    return out


def _require_empty(out: Path) -> None:
    """A fresh run writes only into a new or empty folder (its lock file aside)."""
    if out.exists() and (not out.is_dir() or any(p.name != LOCK_NAME for p in out.iterdir())):
        raise UserError(f"{out} exists and is not an empty folder; give a new or empty --out (nothing there "
                        "is deleted or appended to; a run of this config stopped before its first checkpoint starts "
                        "again with --resume)")


def _run(setup: Setup, out: Path, ck_path: Path, resume: bool, progress: bool, figures: bool,
         stop_after: Optional[int]) -> dict:
    """The body of :func:`run`, holding the folder's lock."""
    cfg = setup.cfg
    digest = config_digest(cfg)
    ckpt.remove_stale_temps(out)  # a write killed mid-way (SIGKILL) left its temp file
    for ctx in setup.contexts:
        ctx.out = out
    files = _Files(out, setup)
    params, state = initial_state(setup)
    t = 0
    if resume:
        try:
            trees, meta = ckpt.load(ck_path, {"params": params, "state": state})
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:   # json and shape errors are ValueErrors
            raise UserError(f"--resume: {ck_path} cannot be read ({type(exc).__name__}: {exc}); the file is damaged "
                            "or from another configuration — start the run again in a new folder") from None
        if meta["digest"] != digest:
            changed = config_changes(out, cfg)
            raise UserError(f"--resume: {out} was run with a different configuration"
                            + (f" ({changed})" if changed else "") + "; only run.steps may change")
        params, state, t = trees["params"], trees["state"], meta["step"]
        if t > cfg.run["steps"]:   # nothing would run, and summary.json would state the smaller count
            raise UserError(f"--resume: this run has done {t:,} steps, more than the {cfg.run['steps']:,} asked for; "
                            f"a run is not shortened (ask for ≥ {t:,} steps)")
        files.truncate(meta["bytes"])
        ran = load_config(out / "config.toml")   # as written (a default such as ensemble "auto" kept as it was)
        ckpt.atomic_write_text(out / "config.toml", to_toml(dataclasses.replace(   # run.steps may have grown
            ran, run={**ran.run, "steps": cfg.run["steps"]})))
    else:
        ckpt.atomic_write_text(out / "config.toml", to_toml(cfg))
        snapshot(setup, out, files, 0, params, False)
        _write_checkpoint(ck_path, params, state, 0, setup, digest, files)
    t_resumed = t
    other_versions = write_versions(out / "versions.json", setup.plugins, resumed=resume and t > 0)
    total, snap = cfg.run["steps"], cfg.run["snapshot_every"]
    bar = Progress(total, start=t, label=cfg.task["name"]) if progress else None
    diverged = None
    t_start = time.perf_counter()
    done_chunks = 0
    while t < total:
        end = min((t // snap + 1) * snap, total)
        new_params, new_state, records, steps, div = advance(setup, t, end, params, state)
        if (div >= 0).any():
            diverged = {"step": int(div[div >= 0].min()), "seed": int(np.argmin(np.where(div >= 0, div, np.inf)))}
            records, steps = _before(records, steps, diverged["step"])
        files.metrics.append(_metric_rows(setup, records, steps))
        _save_arrays(setup, out, records, steps, end)
        if diverged:
            break
        params, state, t = new_params, new_state, end
        final = t >= total
        snapshot(setup, out, files, t, params, final)
        if t % cfg.run["checkpoint_every"] == 0 or final:
            _write_checkpoint(ck_path, params, state, t, setup, digest, files)
        if bar:
            last = {c: float(np.nanmean(setup.column_of[c](records)[:, -1])) for c in setup.columns[:2]}
            bar.update(t, "  ".join(f"{k} {v:.3g}" for k, v in last.items()))
        done_chunks += 1
        if stop_after is not None and done_chunks >= stop_after and t < total:
            return {"stopped_at": t}
    if bar:
        bar.close()
    summary = summarise(setup, out, diverged, time.perf_counter() - t_start, t)
    if other_versions:
        summary["notes"] = list(summary.get("notes", [])) + [
            f"resumed at step {t_resumed:,} under other versions than before ({'; '.join(other_versions)}): the "
            "steps after it follow the same law, but their round-off is not the uninterrupted run's"]
    ckpt.atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=float))
    if figures:
        failed = []

        def attempt(name, draw) -> list:
            before = _open_figures()
            try:       # a figure that cannot be drawn is a note, never a lost or failed run
                return list(draw() or [])
            except Exception as exc:
                first = (str(exc).splitlines() or [""])[0]
                failed.append(f"figures of {name} not drawn: {type(exc).__name__}: {first}")
                _close_figures(_open_figures() - before)   # a sweep worker draws many runs: leave none open
                return []

        written = attempt("metrics", lambda: [(p, METRICS_CAPTION) for p in [metrics_figure(out)] if p is not None])
        for ext, ctx in zip(setup.extensions, setup.contexts):
            written += attempt(ext.name, lambda: ext.figures(ctx, out))
        write_captions(out / "figures", written, "written by flatland run")
        if failed:
            summary["notes"] = list(summary.get("notes", [])) + failed
            ckpt.atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=float))
    return summary


def _open_figures() -> set:
    """Numbers of the open matplotlib figures (none when pyplot was never imported)."""
    plt = sys.modules.get("matplotlib.pyplot")
    return set(plt.get_fignums()) if plt else set()


def _close_figures(numbers) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    for n in numbers if plt else ():
        plt.close(n)


def _write_checkpoint(path, params, state, t, setup, digest, files):
    meta = {"step": int(t), "digest": digest, "seed": setup.cfg.run["seed"], "prng": setup.cfg.run["prng"],
            "bytes": files.sizes(), "base_key": np.asarray(jax.random.key_data(setup.base_key)).tolist()}
    ckpt.save(path, {"params": params, "state": state}, meta)


def seed_means(path) -> dict:
    """``{"step": logged steps, column: seed mean at each step}`` from a metrics.csv."""
    import warnings

    m = read_csv(path)
    if not m or m["step"].size == 0:
        return {}
    steps = np.unique(m["step"])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = {k: np.array([np.nanmean(m[k][m["step"] == s]) for s in steps]) for k in m if k not in ("step", "seed")}
    return {"step": steps} | mean


def summarise(setup: Setup, out: Path, diverged, wall, t) -> dict:
    """Final and first logged seed means, divergence, wall time, and each extension's report."""
    curves = seed_means(out / "metrics.csv")
    summary = {"steps_done": int(t), "diverged": diverged, "wall_seconds": wall, "config": setup.cfg.to_dict()}
    if curves:
        summary["final_step"] = int(curves["step"][-1])
        summary["final"] = {k: float(v[-1]) for k, v in curves.items() if k != "step"}
        summary["initial_logged"] = {k: float(v[0]) for k, v in curves.items() if k != "step"}
    notes = [f"metric {k} was NaN at every logged step" for k, v in curves.items()
             if k != "step" and len(v) and bool(np.all(np.isnan(v)))]
    for ext, ctx in zip(setup.extensions, setup.contexts):
        rep = dict(ext.report(ctx, summary, curves) or {}) if curves else {}
        notes += list(rep.pop("notes", []))
        summary.update(rep)
    if notes:
        summary["notes"] = notes
    return summary
