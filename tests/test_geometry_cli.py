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
    (lambda p: np.savez(p, responses=np.zeros((2, 2, 4, 3)), readout=np.zeros((2, 3))), "readout must be"),
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
