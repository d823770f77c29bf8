"""``run_sweep``: every point of a sweep file as an ordinary run, on a Dask cluster, into one table.

What: the points of :func:`flatland.sweep_spec.load` run as tasks on a
``dask.distributed`` cluster — a ``LocalCluster`` of ``workers`` processes with
one thread each (started with :func:`flatland.sweep_worker.worker_env`, and each
pinned to its own core when there are enough), or the cluster at ``scheduler``
used as it is. Each point runs into
``OUT/runs/<index>-<id>/``, an ordinary ``flatland run`` folder (its
``config.toml`` re-runs it alone). As points finish, their rows go to
``OUT/table.parquet`` (rewritten atomically at most every ``table_every``
seconds and at the end), and a progress line shows finished/failed counts and
the ETA.

Resume: ``OUT/sweep.json`` lists the points' ids; ``resume=True`` checks that
the sweep file still expands to the same points, keeps every finished
(``done``/``diverged``) run as it is, resumes partial runs from their last
checkpoint, and reruns failed and pending ones. A lock file
(:func:`flatland.folder_lock.folder_lock`) stops two sweeps writing one folder.

Order: points are submitted grouped by their structure
(:func:`flatland.run_build.structure_key`: the config without hyperparameter
values, seed and step count), so that a worker's consecutive points tend to
reuse its compiled chunk (:func:`flatland.runner.build`) and the on-disk
compilation cache; the groups go in an order fixed by a hash of their
structure, not by the file's axes, so a sweep stopped early has finished a mix
of all its mechanisms rather than all points of the first. Before any run
starts, one point of each structure is assembled here, so a misspelt name
stops the sweep with one line.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from . import sweep_spec
from .errors import UserError
from .folder_lock import folder_lock
from .progress import Progress
from .sweep_table import ERROR_FILE, FINISHED, run_row, status_of, write_table
from .sweep_worker import ignore_interrupts, pin_to_cores, quiet_logs, run_point, usable_cores, worker_env

MANIFEST, TABLE, RUNS, CACHE = "sweep.json", "table.parquet", "runs", "jax-cache"


def point_dir(out: Path, point) -> Path:
    """A point's run folder: ``OUT/runs/<index, 5 digits>-<id>``."""
    return out / RUNS / f"{point.index:05d}-{point.id}"


def _structures(points) -> dict:
    """Each point's :func:`flatland.run_build.structure_key`. One point of each kind (its structure with
    the task's values left out: names and option keys are what a sweep file misspells) is assembled here,
    so a misspelt name stops the sweep with one line before any run starts; a bad task value for one
    point is that point's failed row."""
    from .run_build import assemble, build_setup, structure_key

    asm = assemble()
    keys, seen = {}, set()
    for p in points:
        try:
            keys[p.index] = structure_key(p.config, asm.registry)
            kind = json.loads(keys[p.index])
            kind["task"] = [kind["task"].get("name"), sorted(kind["task"])]
            kind = json.dumps(kind, sort_keys=True)
            if kind not in seen:
                seen.add(kind)
                build_setup(p.config, asm)
        except UserError as exc:
            where = ", ".join(f"{k}={v!r}" for k, v in p.overrides.items())
            raise UserError(f"sweep point {p.index} ({where}): {exc}") from None
    return keys


def _digest(point) -> str:
    """Hash of a point's whole config: a changed base config is caught on --resume even where ids stay."""
    return hashlib.sha256(json.dumps(point.config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _manifest(points, sweep_file) -> dict:
    return {"sweep_file": str(sweep_file),
            "points": [{"index": p.index, "id": p.id, "digest": _digest(p), "overrides": p.overrides}
                       for p in points]}


def _prepare(out: Path, points, sweep_file, resume: bool) -> None:
    """Create or check the sweep folder (module doc)."""
    manifest = out / MANIFEST
    if resume:
        if not manifest.exists():
            raise UserError(f"--resume: {out} holds no sweep ({MANIFEST} missing)")
        old = [(p["index"], p["id"], p.get("digest")) for p in json.loads(manifest.read_text())["points"]]
        new = [(p.index, p.id, _digest(p)) for p in points]
        if old != new:
            diff = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
            raise UserError(f"--resume: {sweep_file} no longer gives the points in {out} ({len(old)} there, "
                            f"{len(new)} now; first difference at point {diff}); use the original sweep file")
        return
    if manifest.exists():
        raise UserError(f"{out} already holds a sweep; use --resume to continue it, or another --out")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not empty; give a new or empty --out folder")
    out.mkdir(parents=True, exist_ok=True)
    from .checkpoint import atomic_write_text

    atomic_write_text(manifest, json.dumps(_manifest(points, sweep_file), indent=1, default=str) + "\n")
    shutil.copyfile(sweep_file, out / "sweep.toml")


def _client(scheduler, workers, cache_dir):
    """A dask.distributed Client: on the given scheduler, or on a new LocalCluster (module doc)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(f"--scheduler {scheduler}: cannot connect ({exc}); give the address a "
                            "`dask scheduler` printed, e.g. tcp://127.0.0.1:8786") from None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR, env=worker_env(cache_dir))
    client = Client(cluster)
    client.wait_for_workers(n)
    client.run(ignore_interrupts)
    cores = usable_cores()
    if n <= len(cores):          # one core each (module doc of flatland.sweep_worker); not with more workers
        for core, address in zip(cores, sorted(client.scheduler_info()["workers"])):
            client.run(pin_to_cores, {core}, workers=[address])
    return client, cluster


def _lost(point, run_dir: Path, exc) -> dict:
    """Row of a point whose worker died or whose task raised outside run_point."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR_FILE).write_text(f"worker lost: {type(exc).__name__}: {exc}".splitlines()[0] + "\n")
    return run_row(point, run_dir)


def run_sweep(sweep_file, out, scheduler=None, workers=None, resume=False, progress=True,
              table_every: float = 10.0) -> dict:
    """Run (or resume) a sweep; returns counts per status and the table's path (module doc)."""
    sweep_file, out = Path(sweep_file), Path(out)
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be ≥ 1, got {workers}")
    if scheduler and workers:
        raise UserError("--workers starts a local cluster; with --scheduler the cluster's own workers run the sweep")
    points = sweep_spec.load(sweep_file)
    structures = _structures(points)
    with contextlib.ExitStack() as stack:
        remote = None
        if scheduler:  # connect first: an unreachable scheduler fails before any file is written
            remote = _client(scheduler, None, None)
            stack.callback(remote[0].close)
        _prepare(out, points, sweep_file, resume)
        stack.enter_context(folder_lock(out, "sweep"))
        rows, todo = {}, []
        for p in points:
            if status_of(point_dir(out, p))[0] in FINISHED:
                rows[p.index] = run_row(p, point_dir(out, p))
            else:
                todo.append(p)
        todo.sort(key=lambda p: (hashlib.sha256(structures[p.index].encode()).hexdigest(), p.index))
        write_table(list(rows.values()) + [run_row(p, point_dir(out, p)) for p in todo], out / TABLE)
        if todo:
            _run_all(todo, rows, out, remote, workers, progress, table_every)
        write_table(list(rows.values()), out / TABLE)
    counts = {}
    for r in rows.values():
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"points": len(points), "counts": counts, "table": str(out / TABLE), "ran": len(todo)}


def _run_all(todo, rows, out, remote, workers, progress, table_every) -> None:
    from dask.distributed import as_completed

    cache = (out / CACHE).resolve()
    cache.mkdir(exist_ok=True)
    client, cluster = remote or _client(None, workers, cache)
    token = uuid.uuid4().hex[:8]
    bar = Progress(len(todo), label="sweep", unit="runs") if progress else None
    stopped = False
    try:
        futures = {}
        for rank, p in enumerate(todo):
            f = client.submit(run_point, p, point_dir(out, p).resolve(), cache, pure=False,
                              key=f"flatland-{token}-{p.index:05d}-{p.id}", priority=-rank)
            futures[f] = p
        last_write, done, failed = time.monotonic(), 0, 0
        for f in as_completed(futures):
            p = futures[f]
            try:
                rows[p.index] = f.result()
            except Exception as exc:  # noqa: BLE001 - the worker died; the point is a failed row
                rows[p.index] = _lost(p, point_dir(out, p), exc)
            done += 1
            failed += rows[p.index]["status"] == "failed"
            if bar:
                bar.update(done, f"{failed} failed")
            if time.monotonic() - last_write >= table_every:
                write_table(list(rows.values()) + [run_row(q, point_dir(out, q)) for q in todo
                                                   if q.index not in rows], out / TABLE)
                last_write = time.monotonic()
        if bar:
            bar.close()
    except BaseException:
        stopped = True
        raise
    finally:
        if remote is None:
            _close_local(client, cluster, quiet=stopped)


def _close_local(client, cluster, quiet: bool) -> None:
    """Close the local cluster; ``quiet`` when stopping early (Ctrl-C, or an error said elsewhere), whose
    shutdown the workers' nannies would log as errors."""
    log = logging.getLogger("distributed")
    level = log.level
    if quiet:
        log.setLevel(logging.CRITICAL)
        for nanny in (False, True):   # the workers and their nannies log from their own processes: a worker's
            try:                      # heartbeat to the closing scheduler printed a traceback after Ctrl-C
                client.run(quiet_logs, nanny=nanny)
            except Exception:  # noqa: BLE001 - a cluster already going down: nothing left to quiet
                pass
    try:
        client.close()
        cluster.close()
    finally:
        log.setLevel(level)
