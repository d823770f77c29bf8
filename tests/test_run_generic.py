"""`flatland run` on any registered task: valleys, third-party losses, the digits MLP; registry metrics; errors."""
import json
import types
from pathlib import Path

import numpy as np
import pytest

import flatland
from flatland import Learner, Loss, hookimpl, run_build, runner
from flatland.cli import main
from flatland.config import from_dict, load
from flatland.errors import UserError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

VALLEY = """
[task]
name = "fig5a"
[learner]
name = "momentum"
lr = 0.02
[noise]
name = "update"
sigma = 0.01
[run]
steps = 700
seeds = 2
log_every = 100
snapshot_every = 300
checkpoint_every = 300
metrics = ["loss", "param_norm"]
"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_valley_long_example_runs_through_the_cli(tmp_path, capsys):
    """The example (heavy-ball learner from the example plugin, update noise), shortened; 2,345 steps
    is not a multiple of snapshot_every or log_every, so the last chunk is shorter and its step logged."""
    pytest.importorskip("flatland_example")
    out = tmp_path / "valley"
    assert main(["run", str(EXAMPLES / "valley-long.toml"), "--steps", "2345", "--out", str(out), "--quiet"]) == 0
    assert "final (seed mean)" in capsys.readouterr().out
    m = runner.read_csv(out / "metrics.csv")
    assert list(m) == ["step", "seed", "loss", "param_norm", "grad_norm"]
    assert m["step"].max() == 2345 and set(np.unique(m["seed"])) == {0, 1, 2, 3}
    assert np.all(np.isfinite(m["loss"])) and m["param_norm"][0] > 1.5  # it starts at [task] start = (2, 0)
    assert (out / "figures" / "metrics.png").stat().st_size > 1000
    assert "* `metrics.png` — every logged metric" in (out / "figures" / "README.md").read_text()
    versions = json.loads((out / "versions.json").read_text())
    for k in ("python", "jax", "jaxlib", "numpy", "sympy", "flatland"):
        assert versions[k], k
    assert any(p["origin"].startswith("flatland-example-plugin") for p in versions["plugins"])
    cfg = load(out / "config.toml")
    assert cfg.task["start"] == [2.0, 0.0] and cfg.run["steps"] == 2345
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_done"] == 2345 and set(summary["final"]) == {"loss", "param_norm", "grad_norm"}


def test_third_party_loss_and_point_start(tmp_path):
    """The example plugin's ring loss starts at its point; a valley takes [task] start."""
    pytest.importorskip("flatland_example")
    ring = VALLEY.replace('name = "fig5a"', 'name = "ring"')
    s = runner.run(load(_write(tmp_path, "ring.toml", ring)), tmp_path / "ring", progress=False, figures=False)
    assert s["steps_done"] == 700 and s["initial_logged"]["param_norm"] == pytest.approx(1.0, abs=0.05)
    started = VALLEY.replace('name = "fig5a"', 'name = "fig5a"\nstart = [3.0, 0.0]')
    s = runner.run(load(_write(tmp_path, "v.toml", started)), tmp_path / "v", progress=False, figures=False)
    assert s["initial_logged"]["param_norm"] == pytest.approx(3.0, abs=0.1)


def test_network_task_with_array_metric(tmp_path):
    """The digits MLP (float32, init per seed): a scalar metric goes to the CSV, an array metric to records/."""
    text = VALLEY.replace('name = "fig5a"', 'name = "digits-mlp"').replace(
        'metrics = ["loss", "param_norm"]', 'metrics = ["loss", "stimulus-accuracy", "feature-means"]').replace(
        "steps = 700", "steps = 40").replace("log_every = 100", "log_every = 20").replace(
        "snapshot_every = 300", "snapshot_every = 20").replace("checkpoint_every = 300", "checkpoint_every = 20")
    out = tmp_path / "digits"
    runner.run(load(_write(tmp_path, "d.toml", text)), out, progress=False, figures=True)
    m = runner.read_csv(out / "metrics.csv")
    assert list(m) == ["step", "seed", "loss", "stimulus-accuracy"] and m["step"].tolist() == [20, 20, 40, 40]
    with np.load(out / "records" / "step_0000000040.npz") as z:
        assert z["feature-means"].shape == (2, 1, 10, 84) and z["step"].tolist() == [40]
    assert (out / "figures" / "metrics.png").exists()


def test_every_registered_metric_is_accepted_by_run():
    """`flatland list metrics` is exactly what `run` accepts: each builds on a task that provides it."""
    reg = flatland.assemble().registry
    by_task = {"fig5a": [], "corridor": [], "digits-mlp": [], "psp": [], "nsm-ring": []}
    extras = {"fig5a": set(), "corridor": {"relu", "place", "responses"},
              "digits-mlp": {"apply", "x_stim", "y_stim", "responses"}, "psp": {"psp", "online"},
              "nsm-ring": {"ring", "online"}}
    for e in reg.entries("metrics"):
        req = set(reg.create("metrics", e.name).requires)
        task = next(t for t, ex in extras.items() if req <= ex)
        by_task[task].append(e.name)
    for task, names in by_task.items():
        d = from_dict({"task": {"name": task} | ({"n_hid": 6} if task == "corridor" else {}),
                       "learner": {"name": "gd"}, "run": {"metrics": names}}).to_dict()
        setup = runner.build(from_dict(d))
        assert setup.metric_names == tuple(names)
    assert sorted(sum(by_task.values(), [])) == reg.names("metrics")


def _err(tmp_path, capsys, text, *extra):
    p = _write(tmp_path, "bad.toml", text)
    assert main(["run", str(p), "--out", str(tmp_path / "o"), "--quiet", "--no-figures", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_bad_input_is_one_line(tmp_path, capsys):
    assert "'fig5b'" in _err(tmp_path, capsys, VALLEY.replace('"fig5a"', '"fig5b"'))
    assert "'los'" in _err(tmp_path, capsys, VALLEY.replace('["loss", "param_norm"]', '["los"]'))
    assert "'mom'" in _err(tmp_path, capsys, VALLEY.replace('"momentum"', '"mom"'))
    assert "'updat'" in _err(tmp_path, capsys, VALLEY.replace('"update"', '"updat"'))
    err = _err(tmp_path, capsys, VALLEY.replace('["loss", "param_norm"]', '["loss", "si"]'))
    assert "'si'" in err and "'relu'" in err and "fig5a" in err
    assert "steps" in _err(tmp_path, capsys, VALLEY, "--steps", "0")
    assert "steps" in _err(tmp_path, capsys, VALLEY.replace("steps = 700", "steps = -5"))
    assert "relu" in _err(tmp_path, capsys, VALLEY + '[relu]\nhessian = "off"\n')
    assert "[nosuch]" in _err(tmp_path, capsys, VALLEY + "[nosuch]\nx = 1\n")
    assert "start" in _err(tmp_path, capsys, VALLEY.replace('"fig5a"', '"fig5a"\nstart = [1.0]'))
    assert "start" in _err(tmp_path, capsys, VALLEY.replace('"fig5a"', '"corridor"\nstart = [1.0]'))
    # a misspelt core section was read as an extension's table and failed on its values
    assert "did you mean [run]" in _err(tmp_path, capsys, VALLEY.replace("[run]", "[runn]"))
    # less alike but holding [run]'s keys: was "[rnu] metrics must be a list of numbers"
    assert "did you mean [run]" in _err(tmp_path, capsys, VALLEY.replace("[run]", "[rnu]"))
    assert "point has 3 coordinates" in _err(tmp_path, capsys, VALLEY.replace('"fig5a"', '"fig5a"\npoint = [1.0, 0.0, 2.0]'))
    # a plugin's factory passing the option on as tuple(point): "abc" was 3 coordinates ("ab": an internal error)
    for bad in ('"abc"', '"ab"', '[1.0, "a"]'):
        err = _err(tmp_path, capsys, VALLEY.replace('"fig5a"', f'"ring"\npoint = {bad}'))
        assert "point must be a list of" in err and "numbers" in err, err
    # a factory option of the wrong type reached the component's own code (a plugin's init raised
    # "Shapes must be 1D sequences … ('16', 10)" as an internal error): checked against its default's type
    rows = VALLEY.replace('"fig5a"', '"fig5a-targets"\nn_rows = "16"')
    assert "[task] fig5a-targets: n_rows must be an integer like its default" in _err(tmp_path, capsys, rows)
    assert "batch must be an integer" in _err(tmp_path, capsys, VALLEY.replace('"update"', '"minibatch"\nbatch = 2.5'))


def test_a_factory_option_that_is_a_hyperparameter_is_checked_like_one(tmp_path, monkeypatch, capsys):
    """A learner factory gd_wd(lr, wd) takes `wd` from the config: it must still obey the hyperparameter rules."""
    def gd_wd(lr=0.05, wd=0.0005):
        return Learner("gd-wd", lambda p, h: (), lambda k, p, s, h, o: (p - h["lr"] * (o.grad(k, p) + h["wd"] * p), s, {}),
                       {"lr": lr, "wd": wd})

    plugin = types.SimpleNamespace(flatland_learners=hookimpl(lambda register: register("gd-wd", gd_wd, "GD + decay")))
    real = run_build.assemble
    monkeypatch.setattr(run_build, "assemble", lambda: real(extra=[("wd-plugin", plugin)]))
    good = VALLEY.replace('name = "momentum"', 'name = "gd-wd"\nwd = 0.001')
    assert "wd must be ≥ 0" in _err(tmp_path, capsys, good.replace("wd = 0.001", "wd = -0.001"))
    assert runner.build(load(_write(tmp_path, "g.toml", good))).hyper["learner"]["wd"] == 0.001


def test_task_without_init_or_point_is_a_user_error(tmp_path, monkeypatch):
    plugin = types.SimpleNamespace(flatland_losses=hookimpl(
        lambda register: register("bare", lambda: Loss("bare", value=lambda p: (p ** 2).sum()), "no init, no point")))
    real = run_build.assemble
    monkeypatch.setattr(run_build, "assemble", lambda: real(extra=[("bare-plugin", plugin)]))
    cfg = load(_write(tmp_path, "b.toml", VALLEY.replace('"fig5a"', '"bare"')))
    with pytest.raises(UserError, match="neither init nor point"):
        runner.build(cfg)
    ok = load(_write(tmp_path, "c.toml", VALLEY.replace('"fig5a"', '"bare"\nstart = [0.5, 0.5]')))
    s = runner.run(ok, tmp_path / "bare", progress=False, figures=False)
    assert s["steps_done"] == 700


def test_a_factory_error_is_one_line_naming_the_table(tmp_path, monkeypatch, capsys):
    """A task factory's own errors reached the user raw: numpy's two-line message for data_path = 3, and
    "nope.csv not found." (a FileNotFoundError) naming neither the table nor the option."""
    def from_file(data_path: str = "data.csv"):
        np.loadtxt(data_path)

    plugin = types.SimpleNamespace(flatland_losses=hookimpl(lambda register: register("from-file", from_file, "a task")))
    real = run_build.assemble
    monkeypatch.setattr(run_build, "assemble", lambda: real(extra=[("file-plugin", plugin)]))
    missing = _err(tmp_path, capsys, VALLEY.replace('"fig5a"', '"from-file"\ndata_path = "nope.csv"'))
    assert missing.startswith("flatland: error: [task] from-file: bad option:") and "nope.csv" in missing


def test_a_metric_that_is_nan_throughout_is_noted(tmp_path, monkeypatch):
    """A metric NaN at every logged step was logged with exit 0 and not a word."""
    import jax.numpy as jnp

    from flatland import Metric

    plugin = types.SimpleNamespace(flatland_metrics=hookimpl(lambda register: register(
        "always-nan", lambda: Metric("always-nan", lambda p, loss: jnp.nan * loss(p)), "NaN")))
    real = run_build.assemble
    monkeypatch.setattr(run_build, "assemble", lambda: real(extra=[("nan-plugin", plugin)]))
    cfg = load(_write(tmp_path, "n.toml", VALLEY.replace('["loss", "param_norm"]', '["loss", "always-nan"]')))
    s = runner.run(cfg, tmp_path / "o", progress=False, figures=False)
    assert s["notes"] == ["metric always-nan was NaN at every logged step"], s.get("notes")


def test_a_metric_that_cannot_run_on_the_task_is_the_one_named(tmp_path, capsys, monkeypatch):
    """`metrics = ["loss", "resid_norm"]` on a value-only task blamed 'loss': every metric was evaluated to find
    one's shape, so the first name got the second's error (here: an extra the task does not have)."""
    from flatland import Metric

    plugin = types.SimpleNamespace(flatland_metrics=hookimpl(lambda register: register(
        "needs-residuals", lambda: Metric("needs-residuals", lambda p, loss: loss.extras["responses"](p)), "r")))
    real = run_build.assemble
    monkeypatch.setattr(run_build, "assemble", lambda: real(extra=[("r-plugin", plugin)]))
    err = _err(tmp_path, capsys, VALLEY.replace('["loss", "param_norm"]', '["loss", "needs-residuals"]'))
    assert "metric 'needs-residuals' cannot run" in err, err
