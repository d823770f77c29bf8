"""What the results-folder figures draw is what the rows say (the figure is read without the JSON)."""
import numpy as np

from flatland import CheckResult
from flatland import check_figures


def _capture(monkeypatch):
    """Keep the figure that check_figures saves, instead of closing it."""
    kept = {}
    plt = check_figures._plt()
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.setdefault("fig", fig))
    return kept


def test_bars_draws_each_ratio_with_its_interval_and_writes_threshold_rules(monkeypatch, tmp_path):
    rows = [CheckResult("a", "s", 2.0, 2.1, 0.01, "|r − 1| ≤ 2%", True, ratio=1.05, ratio_stderr=0.005),
            CheckResult("b", "s", 0.0, 0.3, 0.1, "> 3 s.e.", False),
            CheckResult("c", "s", 1.0, 0.97, 0.01, "|r − 1| ≤ 5%", True, ratio=0.97, ratio_stderr=0.01)]
    kept = _capture(monkeypatch)
    check_figures.bars(tmp_path / "b.png", rows)
    ax = kept["fig"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    points = sorted((float(line.get_ydata()[0]), float(line.get_xdata()[0])) for line in ax.lines
                    if line.get_marker() == "o")
    assert points == [(0.0, 1.05), (2.0, 0.97)]                      # row index → ratio, nothing drawn for b
    spans = sorted(np.ptp(seg[:, 0]) for coll in ax.collections for seg in coll.get_segments())
    np.testing.assert_allclose(spans, [2 * 1.96 * 0.005, 2 * 1.96 * 0.01])
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["FAIL — no ratio; rule: > 3 s.e."]
    colours = {float(line.get_xdata()[0]): line.get_color() for line in ax.lines if line.get_marker() == "o"}
    assert colours == {1.05: "tab:green", 0.97: "tab:green"}
    assert (tmp_path / "b.png").stat().st_size > 1000
