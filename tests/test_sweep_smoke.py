"""The smoke sweep end to end (slow stage): the same table uninterrupted, after SIGKILL + --resume, and on a
separately started Dask scheduler with two workers; then ``flatland report`` on it."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flatland.sweep_table import read_table

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "examples" / "sweeps" / "smoke.toml"
FLATLAND = [sys.executable, "-m", "flatland"]
VOLATILE = ["wall_seconds", "run_dir"]


def _sweep(out, *extra, timeout=600):
    r = subprocess.run(FLATLAND + ["sweep", str(SMOKE), "--out", str(out), "--quiet", *extra],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return read_table(out / "table.parquet").drop(columns=VOLATILE)


def _partial_run(out: Path):
    """A run folder with a checkpoint past step 0 and no summary yet (the moment to kill)."""
    for d in (out / "runs").glob("*") if (out / "runs").exists() else ():
        m = d / "metrics.csv"
        if not (d / "summary.json").exists() and m.exists() and m.read_text().count("\n") > 15:
            return d
    return None


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _sweep(tmp_path_factory.mktemp("ref") / "out")


def test_sigkill_then_resume_gives_the_same_table(reference, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(FLATLAND + ["sweep", str(SMOKE), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while _partial_run(out) is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    killed_in = _partial_run(out)
    assert killed_in is not None, "no run reached a checkpoint before the sweep ended"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2)                              # the workers notice their parent is gone and exit
    assert not (killed_in / "summary.json").exists()
    table = _sweep(out, "--resume")
    assert table.equals(reference)
    assert json.loads((killed_in / "summary.json").read_text())["steps_done"] == 4000


def test_an_external_scheduler_gives_the_same_table_and_report(reference, tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--scheduler-file", str(sched_file),
                               "--port", "0", "--no-dashboard"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env, start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file", str(sched_file),
                                       "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                      start_new_session=True))
        address = json.loads(sched_file.read_text())["address"]
        table = _sweep(tmp_path / "out", "--scheduler", address)
        assert table.equals(reference)
    finally:
        for p in procs[::-1]:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)
    r = subprocess.run(FLATLAND + ["sweep", str(SMOKE), "--out", str(tmp_path / "nowhere"), "--scheduler",
                                   "tcp://127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "cannot connect" in r.stderr and not (tmp_path / "nowhere").exists()
    r = subprocess.run(FLATLAND + ["report", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "The eLife sweep's claims" in (tmp_path / "out" / "report.md").read_text()
    assert len(list((tmp_path / "out" / "figures").glob("*.png"))) == 4
