"""`flatland infer` trained on a tiny generated sweep: a held-out seed's mechanism in the top 2, shuffled labels at chance.

The sweep (three mechanisms × 5 seeds of a 40-unit ReLU net on a random mapping, 4,000 steps) runs through
the ordinary sweep machinery; recordings are cut from the logged responses. Statistical rule: accuracies
are bootstrap estimates over runs (95% CI); the trained model must beat chance (CI above the largest class
share) and the shuffled-label control must not (its CI contains chance or lies below it).
Marked slow (~55 s on one core: the sweep is 15 real runs); CI's second stage runs it.
"""
import numpy as np
import pytest

from flatland.cli import main
from flatland.infer import Plan, build_dataset, evaluate, fit, infer_file
from flatland.sweep_run import run_sweep

pytestmark = pytest.mark.slow

SWEEP = """
[sweep]
draws = 5
seed = 3

[base.task]
name = "random-mapping"
n_hid = 40
T = 24
d_in = 8
d_out = 6

[base.learner]
name = "gd"
lr = 0.1

[base.noise]
name = "gradient"

[base.run]
steps = 4_000
log_every = 400
snapshot_every = 2_000
checkpoint_every = 4_000
metrics = ["loss_norm", "responses"]

[base.relu]
hessian = "off"

[axes]
"learner.name" = ["gd", "adam"]
"noise.name" = { grid = ["gradient", "label"], when = { "learner.name" = "gd" } }
"noise.sigma" = { grid = [0.05], when = { "noise.name" = "gradient" } }
"noise.sigma#label" = { grid = [0.5], when = { "noise.name" = "label" } }
"learner.lr#adam" = { grid = [0.003], when = { "learner.name" = "adam" } }
"run.seed" = { uniform_int = [0, 1_000_000] }
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("infer")
    (d / "sweep.toml").write_text(SWEEP)
    res = run_sweep(d / "sweep.toml", d / "out", workers=1, progress=False)
    assert res["counts"] == {"done": 15}
    return d / "out"


def test_held_out_seed_in_top_two_and_shuffled_labels_at_chance(sweep, tmp_path):
    plan = Plan(units=(20, None), sessions=(4, 6), obs_noise=(0.0, 0.3), start=0.2)
    frame = build_dataset(sweep, plan)
    assert sorted(frame["mechanism"].unique()) == ["adam + gradient", "gd + gradient", "gd + label"]
    held = {m: g["run"].iloc[0] for m, g in frame.groupby("mechanism")}          # one run (seed) per mechanism
    train = frame[~frame["run"].isin(held.values())]
    names = [c[2:] for c in frame.columns if c.startswith("f.")]
    model = fit(train[[f"f.{n}" for n in names]].to_numpy(float), train["mechanism"].to_numpy(), names)
    model.save(tmp_path / "model")
    # one recording of each held-out run, written as a file and read back the way a user would
    for mech, run in held.items():
        out = tmp_path / f"{run}.npz"
        assert main(["record", str(sweep / "runs" / run), "--out", str(out), "--sessions", "5",
                     "--obs-noise", "0.3", "--seed", "11"]) == 0
        top2 = [name for name, _ in infer_file(out, tmp_path / "model")["posterior"][:2]]
        assert mech in top2, (mech, infer_file(out, tmp_path / "model")["posterior"])
    # the installed model (flatland/infer/default_model.json; examples/recorded/infer-sparsify) reads the same file without --model
    from flatland.infer import DEFAULT_MODEL, load_model
    shipped = load_model(DEFAULT_MODEL)
    post = infer_file(out)["posterior"]
    assert sorted(n for n, _ in post) == sorted(shipped.classes) and abs(sum(p for _, p in post) - 1) < 1e-9
    ev = evaluate(frame, names, folds=5, ablation=False)
    assert ev.model[1] > ev.chance, ev.model              # learned something: CI above chance
    assert ev.shuffled[1] <= ev.chance, ev.shuffled       # shuffled labels: chance is not excluded from below


def test_infer_cli_trains_and_reports(sweep, tmp_path, capsys):
    assert main(["infer", "--train", str(sweep), "--model", str(tmp_path / "m"), "--units", "20,all",
                 "--sessions", "4", "--obs-noise", "0", "--folds", "3", "--no-match"]) == 0
    text = (tmp_path / "m" / "report.md").read_text()
    assert "single-feature threshold rule" in text and "shuffled-label control" in text
    assert (tmp_path / "m" / "figures" / "confusion.png").exists()
    assert "* `confusion.png` — confusion matrix" in (tmp_path / "m" / "figures" / "README.md").read_text()
    err = capsys.readouterr().err
    assert "recordings [" in err and "ETA" in err and "runs/s" in err      # progress over the runs read
    assert main(["infer", str(tmp_path / "nothing.npz"), "--model", str(tmp_path / "m")]) == 2
    assert "no such file" in capsys.readouterr().err
    # two sweep folders pooled: every run of both is read, ids kept apart
    import shutil
    twin = tmp_path / "twin"
    shutil.copytree(sweep, twin)
    args = ["infer", "--train", str(sweep), str(twin), "--model", str(tmp_path / "p"), "--units", "all",
            "--sessions", "4", "--obs-noise", "0", "--folds", "3"]
    # this tiny sweep's mechanisms drift at speeds that do not overlap: matching on speed alone says so
    assert main(args + ["--match", "speed"]) == 2
    assert "matching on drift speed left 0 run(s)" in capsys.readouterr().err
    assert main(args + ["--no-match"]) == 0
    out = capsys.readouterr().out
    text = (tmp_path / "p" / "report.md").read_text()
    assert f"`{sweep} + {twin}`" in text and "(CV grouped by run, 30 runs)" in out
    pooled = __import__("pandas").read_parquet(tmp_path / "p" / "dataset.parquet")
    assert {r.split("/")[0] for r in pooled["run"]} <= {sweep.name, "twin"}
