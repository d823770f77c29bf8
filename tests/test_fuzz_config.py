"""Hostile run configs through `flatland run` (slow stage): a run or one line with exit 2, never a traceback.

Hypothesis mutates a small valid config (the Fig 5A valley, 80 steps; a control test runs it unchanged): one to three keys of any table get
a hostile value (wrong type, negative, zero, NaN/inf as strings, huge, nested tables, lists, unicode) or
an unknown key is added. Valid but long runs (steps or seeds between 10³ and 2⁶²) are not generated;
beyond that, the memory estimate must refuse them. Each config goes to ``flatland run CONFIG --out DIR --quiet --no-figures``
in-process and must end with exit 0 (a run; its folder holds a summary), 1 (a run that diverged: one line naming the
step, metrics kept) or 2 (one line starting "flatland"), never 70 (an internal error) or a traceback, within 20 s of CPU, and
must not write outside its ``--out`` folder.
"""
import contextlib
import io
import os
import time
import warnings

import pytest
from hypothesis import HealthCheck, assume, event, given, settings, strategies as st

from flatland.cli import main

pytestmark = pytest.mark.slow

BASE = {
    "task": {"name": "fig5a"},
    "learner": {"name": "gd", "lr": 0.02},
    "noise": {"name": "update", "sigma": 0.01},
    "run": {"steps": 80, "seeds": 2, "seed": 0, "log_every": 20, "snapshot_every": 40, "checkpoint_every": 40,
            "metrics": ["loss", "param_norm"]},
}
HOSTILE = st.one_of(
    st.sampled_from([0, -1, -0.5, 10**12, 1e308, 2**63, "nan", "inf", "", "x" * 300, True, False, [], {},
                     [1, 2], {"a": 1}, "../../etc", "\x00", "é", "1e99999", "float16", "update+label", 0.0]),
    st.integers(min_value=-10**6, max_value=10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12))
KEYS = [(t, k) for t, table in BASE.items() for k in table] + [("task", "start"), ("task", "n_hid"),
                                                              ("run", "unknown_key"), ("relu", "hessian_every"),
                                                              ("noise", "draws"), ("learner", "momentum")]


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\x00", "\\u0000") + '"'
    if isinstance(v, float):
        return repr(v) if v == v and abs(v) != float("inf") else '"nan"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def _toml(cfg):
    return "\n".join(f"[{t}]\n" + "\n".join(f"{k} = {_toml_value(v)}" for k, v in table.items())
                     for t, table in cfg.items()) + "\n"


def _run(cfg, d):
    path = d / "c.toml"
    path.write_text(_toml(cfg))
    err, out = io.StringIO(), io.StringIO()
    t0 = time.process_time()
    with warnings.catch_warnings(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore")
        rc = main(["run", str(path), "--out", str(d / "out"), "--quiet", "--no-figures"])
    return rc, err.getvalue(), out.getvalue(), time.process_time() - t0


def test_the_base_config_runs(tmp_path):
    """The control: unmutated, the base config is a valid run (else every mutation would fail for its sake)."""
    rc, err, _, _ = _run(BASE, tmp_path)
    assert rc == 0 and (tmp_path / "out" / "summary.json").is_file(), err


@settings(max_examples=int(os.environ.get("FLATLAND_CONFIG_FUZZ_EXAMPLES", "500")), deadline=None,
          derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(KEYS), HOSTILE), min_size=1, max_size=3))
def test_hostile_configs_run_or_end_in_one_line(tmp_path_factory, edits):
    cfg = {t: dict(table) for t, table in BASE.items()}
    for (table, key), value in edits:
        # a valid but long run (10¹² steps, 10⁶ seeds) is not hostile input, only slow: not generated
        assume(not (key in ("steps", "seeds") and isinstance(value, (int, float)) and not isinstance(value, bool)
                    and 1000 < value < 2**62))
        cfg.setdefault(table, {})[key] = value
    d = tmp_path_factory.mktemp("cfg")
    before = {"c.toml"}
    rc, text, stdout, cpu = _run(cfg, d)
    event(f"exit {rc}")
    assert rc in (0, 1, 2), (edits, rc, text[-2000:])
    if rc == 2:
        assert text.count("\n") == 1 and text.startswith("flatland"), (edits, text)
    elif rc == 1:   # a run that diverged (e.g. lr = 10¹²): said in one line with its step, metrics kept
        assert text.count("\n") == 1 and "diverged" in text and "at step" in text, (edits, text)
        assert (d / "out" / "metrics.csv").is_file(), edits
    else:
        assert (d / "out" / "summary.json").is_file(), edits
    assert "Traceback" not in text + stdout, edits
    assert set(os.listdir(d)) - before <= {"out"}, (edits, set(os.listdir(d)) - before)
    assert cpu < 20.0, (edits, cpu)
