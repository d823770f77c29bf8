"""flatland sweep on Dask: every point runs as an ordinary run, one table, resume, folder mistakes in one line."""
import json
import os

import pytest

from flatland import runner
from flatland.cli import main
from flatland.config import load
from flatland.errors import UserError
from flatland.folder_lock import LOCK_NAME as LOCK
from flatland.sweep_run import MANIFEST, TABLE, _manifest, point_dir, run_sweep
from flatland.sweep_spec import load as load_points
from flatland.sweep_table import read_table
from flatland.sweep_worker import run_point

SWEEP = """
[sweep]
seed = 0

[base.task]
name = "fig5a"
start = [2.0, 0.1]

[base.learner]
name = "gd"

[base.noise]
name = "update"
sigma = 0.01

[base.run]
steps = 300
seeds = 2
log_every = 50
snapshot_every = 100
checkpoint_every = 100
metrics = ["loss", "param_norm"]

[axes]
"learner.lr" = [0.05, 50.0]
"run.seed" = { seeds = 2 }
"""

#: columns that legitimately differ between two runs of the same sweep
VOLATILE = ["wall_seconds", "run_dir"]


def _write(tmp_path, text=SWEEP, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def comparable(frame):
    return frame.drop(columns=VOLATILE).reset_index(drop=True)


def test_every_point_is_an_ordinary_run_in_one_table_and_resume_redoes_nothing(tmp_path):
    sweep = _write(tmp_path)
    out = tmp_path / "out"
    res = run_sweep(sweep, out, workers=1, progress=False)
    assert res["points"] == 4 and res["ran"] == 4
    assert res["counts"] == {"done": 2, "diverged": 2}          # lr 50 on curvature 4 diverges
    table = read_table(out / TABLE)
    assert list(table["point"]) == [0, 1, 2, 3]
    assert list(table["learner.lr"]) == [0.05, 0.05, 50.0, 50.0] and list(table["run.seed"]) == [0, 1, 0, 1]
    assert (table.loc[table.status == "diverged", "diverged_step"] >= 1).all()
    assert table.loc[0, "final.loss"] != table.loc[1, "final.loss"]   # seeds differ

    # any point re-runs alone from its folder's config.toml, with the same result
    p = load_points(sweep)[1]
    alone = runner.run(load(point_dir(out, p) / "config.toml"), tmp_path / "alone", progress=False, figures=False)
    assert alone["final"]["loss"] == table.loc[1, "final.loss"]

    before = comparable(table)
    res = run_sweep(sweep, out, resume=True, progress=False)
    assert res["ran"] == 0
    changed = _write(tmp_path, SWEEP.replace("steps = 300", "steps = 400"), "changed.toml")
    with pytest.raises(UserError, match="no longer gives the points"):   # same ids, another base config
        run_sweep(changed, out, resume=True, progress=False)
    assert comparable(read_table(out / TABLE)).equals(before)
    assert not (out / LOCK).exists()


def test_a_point_that_raises_is_a_failed_row_and_is_retried_on_resume(tmp_path, monkeypatch):
    point = load_points(_write(tmp_path))[0]

    def broken(*args, **kwargs):
        raise RuntimeError("simulated plugin crash\nsecond line")

    monkeypatch.setattr(runner, "run", broken)
    row = run_point(point, tmp_path / "p", tmp_path / "cache")
    assert row["status"] == "failed" and row["reason"] == "RuntimeError: simulated plugin crash"
    assert "Traceback" in (tmp_path / "p" / "error.txt").read_text()
    monkeypatch.undo()
    row = run_point(point, tmp_path / "p", tmp_path / "cache")
    assert row["status"] == "done" and not (tmp_path / "p" / "error.txt").exists()


def test_sweep_folder_mistakes_are_one_line_errors(tmp_path, capsys):
    sweep = _write(tmp_path)
    out = tmp_path / "out"

    def err(*argv):
        assert main(["sweep", str(sweep), "--out", str(out), "--quiet", *argv]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        return lines[0]

    assert "no sweep" in err("--resume")
    out.mkdir()
    (out / "stray.txt").write_text("x")
    assert "not empty" in err()
    assert "--workers must be ≥ 1" in err("--workers", "0")
    assert "--scheduler" in err("--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    (out / "stray.txt").unlink()

    # a sweep folder: without --resume refused; a changed sweep file refused; a live lock refused
    (out / MANIFEST).write_text(json.dumps({"points": [{"index": 0, "id": "x"}]}))
    assert "--resume" in err()
    assert "no longer gives the points" in err("--resume")
    (out / MANIFEST).write_text(json.dumps(_manifest(load_points(sweep), sweep)))
    (out / LOCK).write_text(f"{os.getpid()}@{os.uname().nodename}\n")
    assert "in use by another sweep" in err("--resume")


def test_a_misspelt_component_stops_the_sweep_before_any_run(tmp_path):
    sweep = _write(tmp_path, SWEEP.replace('"learner.lr" = [0.05, 50.0]', '"learner.name" = ["gd", "gdd"]'))
    with pytest.raises(UserError, match=r"sweep point 2 .*gdd"):
        run_sweep(sweep, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_getaffinity"), reason="core affinity is Linux-only")
def test_local_workers_are_pinned_one_core_each(tmp_path):
    """A local cluster with no more workers than usable cores puts each worker on its own core — every
    thread of it, XLA's pool included, as a task sees them (flatland.sweep_worker's module doc has the
    measured effect). Binding only the calling thread left the task thread and XLA's threads unbound."""
    from flatland.sweep_run import _client
    from flatland.sweep_worker import usable_cores

    def thread_affinities():   # defined here: Dask sends it by value (a test module is not importable there)
        """Start JAX's backend as a point does, then the core sets of every thread of the worker."""
        import os

        import jax.numpy as jnp

        float(jnp.ones(3).sum())
        out = set()
        for tid in os.listdir("/proc/self/task"):
            try:
                out.add(tuple(sorted(os.sched_getaffinity(int(tid)))))
            except OSError:
                pass
        return out

    cores = usable_cores()
    n = min(2, len(cores))
    client, cluster = _client(None, n, tmp_path / "cache")
    try:
        workers = sorted(client.scheduler_info()["workers"])
        seen = [client.submit(thread_affinities, workers=[w], pure=False).result() for w in workers]
    finally:
        client.close()
        cluster.close()
    assert all(len(sets) == 1 and len(next(iter(sets))) == 1 for sets in seen), seen
    assert sorted(next(iter(sets))[0] for sets in seen) == cores[:n]     # one core each, all different


def _fresh_python(code: str):
    """Run ``code`` in a new interpreter (JAX not started, this process's core binding untouched)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_pin_to_cores_binds_every_thread_and_refuses_after_jax_started():
    """In a fresh process: a thread that exists before and one started after the pin are both bound;
    once JAX's backend has started, pin_to_cores changes nothing and says so (late pinning is slower)."""
    code = """
import os, sys, threading
import flatland
from flatland.sweep_worker import pin_to_cores, usable_cores
core = usable_cores()[-1]
ev = threading.Event(); before = threading.Thread(target=ev.wait); before.start()
assert pin_to_cores({core})
after = threading.Thread(target=ev.wait); after.start()
sets = {tuple(sorted(os.sched_getaffinity(int(t)))) for t in os.listdir('/proc/self/task')}
ev.set(); before.join(); after.join()
assert sets == {(core,)}, sets
import jax.numpy as jnp; float(jnp.ones(2).sum())
assert not pin_to_cores({core})
print('ok')
"""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("core affinity is Linux-only")
    out = _fresh_python(code)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_importing_flatland_starts_no_jax_backend():
    """A sweep worker imports flatland (unpickling its tasks) before it pins itself; a backend started by
    the import would size XLA's pool for all cores first (see test above)."""
    code = ("import flatland, flatland_plugins, flatland.cli, flatland.runner, flatland.sweep_run\n"
            "from flatland.run_build import assemble\nassemble()\n"
            "from flatland.sweep_worker import _backend_started\nprint(_backend_started())")
    out = _fresh_python(code)
    assert out.returncode == 0 and out.stdout.strip() == "False", (out.stdout, out.stderr[-2000:])


def test_ctrl_c_stops_a_local_sweep_in_one_line(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group: the local Dask workers took it too and printed
    their asyncio tracebacks, and the nannies logged more while the cluster closed. Only the sweep's own
    process handles it now: exit 130, one line."""
    import signal
    import subprocess
    import sys
    import time

    long = SWEEP.replace("seeds = 2 }", "seeds = 40 }")     # short runs: workers are mostly in Python, where SIGINT lands
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "flatland", "sweep", str(_write(tmp_path, long)), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("**/metrics.csv")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)                       # as a terminal does: the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.splitlines()       # the progress lines a pipe gets (one per 10 s), then the one line
    assert lines[-1] == "flatland: interrupted" and all(line.startswith("sweep [") for line in lines[:-1]), err
