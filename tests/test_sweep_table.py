"""Sweep table rows from run folders: done, diverged, failed, partial and pending points."""
import math

import pytest

from flatland.runner import run
from flatland.sweep_spec import expand
from flatland.sweep_table import ERROR_FILE, run_row

BASE = {"task": {"name": "fig5a", "start": [2.0, 0.1]}, "learner": {"name": "gd"},
        "noise": {"name": "none"},
        "run": {"steps": 200, "seeds": 2, "log_every": 20, "snapshot_every": 100, "checkpoint_every": 100,
                "metrics": ["loss", "param_norm"]}}


def test_rows_say_what_each_run_folder_holds(tmp_path):
    pts = expand({"base": BASE, "axes": {"learner.lr": [0.05, 50.0, 0.02, 0.03, 0.04]}})
    dirs = [tmp_path / f"{p.index:05d}-{p.id}" for p in pts]
    run(pts[0].config, dirs[0], progress=False, figures=False)
    run(pts[1].config, dirs[1], progress=False, figures=False)            # lr 50 on curvature 4: diverges
    dirs[2].mkdir()
    (dirs[2] / ERROR_FILE).write_text("UserError: something named\nTraceback ...\n")
    run(pts[3].config, dirs[3], progress=False, figures=False, stop_after=1)  # killed after a checkpoint

    rows = [run_row(p, d) for p, d in zip(pts, dirs)]
    assert [r["status"] for r in rows] == ["done", "diverged", "failed", "partial", "pending"]
    done = rows[0]
    assert done["learner.lr"] == 0.05 and done["task.name"] == "fig5a" and done["run.seeds"] == 2
    assert done["steps_done"] == 200 and done["reason"] == ""
    assert done["final.loss"] < done["initial.loss"]          # GD converges on the valley
    assert done["run.metrics"] == '["loss", "param_norm"]'     # lists as JSON text
    assert rows[1]["diverged_step"] >= 1 and "non-finite" in rows[1]["reason"]
    assert rows[2]["reason"] == "UserError: something named"
    assert "--resume" in rows[3]["reason"] and math.isnan(rows[3]["steps_done"])
    assert math.isnan(rows[4]["final.loss"] if "final.loss" in rows[4] else math.nan)
    # the run's notes (what `flatland run` printed) are one text column; empty when there are none
    import json
    summary = json.loads((dirs[0] / "summary.json").read_text())
    (dirs[0] / "summary.json").write_text(json.dumps(summary | {"notes": ["a", "figures of x not drawn: E: y"]}))
    assert run_row(pts[0], dirs[0])["notes"] == "a | figures of x not drawn: E: y"
    assert rows[4]["notes"] == ""


def test_a_damaged_or_foreign_table_is_one_line(tmp_path):
    """A junk table.parquet made `flatland report` fail with ArrowInvalid; one without a status column with
    KeyError: 'status' (report and infer --train)."""
    import pandas as pd

    from flatland.errors import UserError
    from flatland.sweep_table import read_table

    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not a parquet file")
    with pytest.raises(UserError, match="cannot be read as a sweep table"):
        read_table(junk)
    foreign = tmp_path / "foreign.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(foreign)
    with pytest.raises(UserError, match="has no status column"):
        read_table(foreign)
