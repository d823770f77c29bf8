"""What a sweep worker does with one point: set the process up once, then run or resume the point's run.

What: ``worker_env(cache_dir)`` is the environment a worker process should
start with (XLA on one thread, BLAS on one thread, JAX's on-disk compilation
cache in the sweep folder); ``run_point(point, run_dir, cache_dir)`` applies it
to the current process when JAX has not yet started its backend (so workers of
a cluster started elsewhere get it too), then runs the point as an ordinary
``flatland run`` into ``run_dir`` — resuming from its checkpoint when there is
one, starting afresh otherwise — and returns its table row. A run that raises
leaves ``error.txt`` (one-line reason first, then the traceback) and a
``failed`` row; it never takes the sweep down.

Why one core per worker: a sweep keeps every core busy with runs, and XLA's
own thread pool would make the runs fight over the cores. The XLA flags alone do
not make a run single-threaded: XLA still runs independent parts of a step
concurrently on a pool as wide as the cores it may use (a Fig 2 run with them
used 1.7 of 2 cores). Only binding does: ``pin_to_cores(cores)`` binds every
thread of the worker before JAX starts its backend, and a local sweep with no
more workers than usable cores binds worker i to core i. Measured on the 2-core
machine, Fig 2 step (float64, fast draws): one run alone 3,660 steps/s unbound,
3,180 bound to one core; two bound runs at once 3,190 + 3,200 (1.74× the
unbound run alone), two unbound 2,400 + 2,400 (1.31×). A sweep of four
6×10⁴-step Fig 2 points: 2 workers 73 s, against 137 s when only the calling
thread was bound (as before); 1 worker bound to one core 127–129 s, unbound
175–187 s (inside a Dask worker an unbound run was slower than the same run
alone — not explained, measured twice).
Why the shared cache: points with the same array shapes and structure lower to
the same XLA program (hyperparameters and seeds are arguments of the compiled
chunk, see :func:`flatland.runner.build`), so a program compiled by one worker
is read from disk by the others.
"""
from __future__ import annotations

import os
import shutil
import traceback
from pathlib import Path

from .compile_cache import use_compilation_cache
from .sweep_table import ERROR_FILE, run_row

SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker_env(cache_dir) -> dict:
    """Environment variables a worker process starts with (module doc)."""
    flags = os.environ.get("XLA_FLAGS", "")
    env = {"XLA_FLAGS": (flags + " " + SINGLE_THREAD_XLA).strip() if "intra_op" not in flags else flags,
           "JAX_COMPILATION_CACHE_DIR": str(cache_dir)}
    return env | {v: os.environ.get(v, "1") for v in THREAD_VARS}


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge
        return bool(getattr(xla_bridge, "_backends", {}))
    except ImportError:  # pragma: no cover - a JAX without this module: assume started, change nothing
        return True


def prepare_process(cache_dir) -> None:
    """Apply :func:`worker_env` to this process where it can still take effect (idempotent)."""
    if not _backend_started():
        for k, v in worker_env(cache_dir).items():
            os.environ[k] = v
    use_compilation_cache(cache_dir, 0.0)


def pin_to_cores(cores) -> bool:
    """Bind every thread of this process to the set ``cores`` (Linux), so the threads started later inherit it.

    False, changing nothing, where the platform cannot or where JAX has already started its backend:
    XLA sizes its thread pool from the affinity when the backend starts, and a pool of two threads
    squeezed onto one core ran 2,300 steps/s against 2,900 for a process pinned before (module doc).
    ``os.sched_setaffinity(0, …)`` alone binds only the calling thread, which left a sweep worker's task
    thread and XLA's pool free to roam.
    """
    if not hasattr(os, "sched_setaffinity") or _backend_started():
        return False
    cores = {int(c) for c in cores}
    try:
        os.sched_setaffinity(0, cores)
    except OSError:
        return False
    for tid in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ():
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:   # the thread ended meanwhile
            pass
    return True


def ignore_interrupts() -> bool:
    """Leave Ctrl-C to the sweep's own process: a terminal sends SIGINT to the whole process group, and a
    local worker that took it printed its asyncio tracebacks; the sweep stops its cluster itself."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return True


def quiet_logs() -> bool:
    """Only critical messages from this process's dask loggers (a local cluster being stopped early)."""
    import logging

    for name in ["distributed", *logging.root.manager.loggerDict]:   # children may hold levels of their own
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return True


def usable_cores() -> list:
    """The cores this process may run on, in order."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def run_point(point, run_dir, cache_dir) -> dict:
    """Run or resume one sweep point into ``run_dir``; its table row (module doc)."""
    run_dir = Path(run_dir)
    prepare_process(cache_dir)
    from . import runner

    resume = (run_dir / "checkpoint.npz").exists()
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)  # killed before its first checkpoint: nothing to keep
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    try:
        runner.run(point.config, run_dir, resume=resume, progress=False)
    except Exception as exc:  # noqa: BLE001 - a failed point is a table row, not a failed sweep
        run_dir.mkdir(parents=True, exist_ok=True)
        first = f"{type(exc).__name__}: {exc}".splitlines()[0]
        (run_dir / ERROR_FILE).write_text(first + "\n\n" + traceback.format_exc())
    return run_row(point, run_dir)
