"""``flatland geometry`` and ``flatland reproduce``: reports, figures, one-line errors."""
import json

import numpy as np
import pytest

from flatland.cli import main


@pytest.fixture
def recording(tmp_path):
    rng = np.random.default_rng(0)
    S, G, M, N = 3, 4, 20, 15
    R = 2 + rng.normal(size=(S, G, M, N)) + np.arange(S)[:, None, None, None] * 0.5 * rng.normal(size=N)
    path = tmp_path / "rec.npz"
    np.savez(path, responses=R, readout=rng.normal(size=(S, 3, N)))
    return path


def test_geometry_report_and_figures(recording, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["geometry", str(recording), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "γ drift-in-variation ratio" in text and "control Δt=0" in text and "split halves" in text
    assert (out / "drift_vs_variance_per_pc.png").stat().st_size > 1000
    assert (out / "metrics_vs_dt.png").stat().st_size > 1000
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["rel_drift"]["2"][0] > summary["rel_drift"]["0"][0]


@pytest.mark.parametrize("make, words", [
    (lambda p: np.savez(p, responses=np.zeros((3, 4, 5))), "4 axes"),
    (lambda p: np.savez(p, a=np.zeros((2, 2, 4, 3)), b=np.zeros(1)), "no array 'responses'"),
    (lambda p: p.write_text("not a zip"), "not a readable .npz"),
    (lambda p: np.savez(p, responses=np.full((2, 2, 4, 3), np.inf)), "NaN or infinite"),
    (lambda p: np.savez(p, responses=np.ones((2, 2, 4, 3)).cumsum(-1), readout=np.zeros((2, 3))), "readout must be"),
    (lambda p: None, "no such file"),
])
def test_geometry_rejects_malformed_files_in_one_line(tmp_path, capsys, make, words):
    path = tmp_path / "bad.npz"
    make(path)
    assert main(["geometry", str(path), "--no-figures"]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and err.startswith("flatland: error:") and "\n" not in err


def test_reproduce_unknown_paper_is_one_line(capsys):
    assert main(["reproduce", "aitken2021"]) == 2
    err = capsys.readouterr().err
    assert "aitken2022" in err and "Traceback" not in err


def test_study_reports_every_stage_with_its_total(monkeypatch):
    """`flatland reproduce` shows progress with an ETA: run_study counts its stages (pretraining, the
    target's drift, one matching sweep per matched type, one run per type) and reports each; the
    simulation itself is stubbed here (it takes minutes), the counting is what is tested."""
    from types import SimpleNamespace

    from flatland.geometry import study

    rng = np.random.default_rng(0)
    data = SimpleNamespace(A=rng.normal(size=(2, 3, 2, 4, 6)), B=rng.normal(size=(2, 3, 2, 4, 6)),
                           readout=[None, None], hyper={}, accuracy=np.ones((2, 3)))
    monkeypatch.setattr(study, "_components", lambda names: (None, None, {n: None for n in names}))
    monkeypatch.setattr(study, "pretrain", lambda *a: None)
    monkeypatch.setattr(study, "drift_size_sweep", lambda loss, noise, learner, p, k, name, grid, proto:
                        np.linspace(0.1, 1.0, len(grid)))
    monkeypatch.setattr(study, "run_noise", lambda *a: data)
    seen = []
    names = ("sgd-minibatch", "node-dropout", "weight-dropout")
    study.run_study(names, runs=2, match_to="node-dropout", progress=lambda d, t, note: seen.append((d, t, note)))
    # 1 pretraining + 1 target + 1 matched type (weight-dropout; sgd-minibatch has no knob) + 3 runs
    assert [(d, t) for d, t, _ in seen] == [(i, 6) for i in range(1, 7)]
    assert seen[2][2].startswith("matched weight-dropout") and seen[-1][2].startswith("weight-dropout")
