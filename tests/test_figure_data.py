"""What the geometry, run and sweep figures draw is what their data says, and every figure folder has captions.

Each test keeps the matplotlib figure a plotting function saves (``plt.close`` is intercepted) and reads the
drawn artists back, then compares them with the numbers the figure was made from.
"""
import numpy as np
import pytest

from flatland.check_figures import _plt
from flatland.geometry import measure
from flatland.geometry import figures as geo_figures
from flatland.results import write_captions


@pytest.fixture
def kept(monkeypatch):
    """Every figure closed through pyplot, in order."""
    figs = []
    plt = _plt()
    monkeypatch.setattr(plt, "close", lambda fig=None: figs.append(fig))
    return figs


@pytest.fixture(scope="module")
def drifting():
    """Synthetic recordings: 5 sessions × 3 groups × 8 repeats × 30 neurons, with a random-walk drift."""
    rng = np.random.default_rng(3)
    S, G, K, N = 5, 3, 8, 30
    base, d = rng.normal(size=(G, N)), np.zeros(N)
    R = np.zeros((S, G, K, N))
    for s in range(S):
        d = d + 0.5 * rng.normal(size=N)
        R[s] = base[:, None, :] + d + 0.7 * rng.normal(size=(G, K, N))
    return measure(R)


def _errorbar_points(ax, marker):
    lines = [ln for ln in ax.lines if ln.get_marker() == marker]
    return (np.concatenate([np.asarray(ln.get_xdata(), float) for ln in lines]),
            np.concatenate([np.asarray(ln.get_ydata(), float) for ln in lines]))


def test_metrics_vs_dt_draws_each_summary_mean_and_its_standard_error(kept, drifting, tmp_path):
    geo_figures.plot_vs_dt({"synthetic": drifting}, str(tmp_path / "m.png"))
    axes = kept[0].axes
    for ax, metric in zip(axes, ("gamma", "svc_angle", "rel_cross_acc")):
        dts = drifting.dts()
        x, y = _errorbar_points(ax, "o")
        np.testing.assert_array_equal(x, dts)
        np.testing.assert_allclose(y, [drifting.summary(metric, t)[0] for t in dts])
        x0, y0 = _errorbar_points(ax, "s")
        assert list(x0) == [0] and y0[0] == pytest.approx(drifting.summary(metric, 0)[0])
        # error bars: vertical segments of half-length 1 s.e. around each drift mean
        segs = [s for c in ax.collections for s in c.get_segments()]
        half = sorted(round(float(np.ptp(s[:, 1])) / 2, 12) for s in segs)
        expected = [drifting.summary(metric, t)[1] for t in [0] + dts]
        np.testing.assert_allclose(half, sorted(round(e, 12) for e in expected), rtol=1e-9)
    chance = [ln for ln in axes[0].lines if ln.get_linestyle() == "--"][0]
    np.testing.assert_allclose(chance.get_ydata(), [drifting.summary("gamma_chance", t)[0]
                                                     for t in [0] + drifting.dts()])


def test_pc_figure_draws_the_points_and_fits_of_the_largest_dt_and_of_the_control(kept, drifting, tmp_path):
    geo_figures.plot_pc_resolved({"synthetic": drifting}, str(tmp_path / "p.png"))
    t = max(drifting.dts())
    for ax, (field, log) in zip(kept[0].axes, (("along", False), ("angle", False), ("var_ratio", True))):
        for k, when in enumerate((0, t)):       # scatter order: control first, then Δt = t
            drawn = ax.collections[k].get_offsets()
            np.testing.assert_allclose(drawn[:, 0], drifting.pcs[when]["v"])
            np.testing.assert_allclose(drawn[:, 1], drifting.pcs[when][field])
            f = drifting.pc_fit("v", field, when, log=log)
            line = next(ln for ln in ax.lines if ln.get_label().startswith("control" if when == 0 else f"Δt = {t}"))
            xs, ys = line.get_xdata(), line.get_ydata()
            pred = 10 ** (f.intercept + f.slope * np.log10(xs)) if log else f.intercept + f.slope * xs
            np.testing.assert_allclose(ys, pred)
            assert f"r = {f.r:.2f}" in line.get_label()


def test_geometry_figures_folder_has_one_caption_per_png(drifting, tmp_path):
    paths = geo_figures.write_figures({"synthetic": drifting}, str(tmp_path))
    text = (tmp_path / "README.md").read_text()
    for p in paths:
        name = p.rsplit("/", 1)[-1]
        line = next(ln for ln in text.splitlines() if f"`{name}`" in ln)
        assert "no caption given" not in line and len(line) > 80


def test_write_captions_lists_every_figure_and_says_when_one_has_none(tmp_path):
    write_captions(tmp_path, [(tmp_path / "a.png", "what a shows"), tmp_path / "b.png"], "by a test")
    lines = (tmp_path / "README.md").read_text().splitlines()
    assert "* `a.png` — what a shows" in lines and "* `b.png` — no caption given" in lines
    assert "(by a test)." in lines[2]
    assert write_captions(tmp_path / "none", []) is None and not (tmp_path / "none").exists()


def test_run_metrics_figure_draws_the_seed_mean_of_the_csv(kept, tmp_path):
    from flatland.run_figures import metrics_figure

    steps, seeds = np.arange(0, 500, 100), [0, 1]
    rows = ["step,seed,loss"] + [f"{s},{k},{(k + 1) * (s + 1.0)}" for s in steps for k in seeds]
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    metrics_figure(tmp_path)
    ax = kept[0].axes[0]
    mean = next(ln for ln in ax.lines if ln.get_label() == "seed mean")
    np.testing.assert_array_equal(mean.get_xdata(), steps)
    np.testing.assert_allclose(mean.get_ydata(), 1.5 * (steps + 1.0))
    assert ax.get_ylabel() == "loss" and kept[0].axes[-1].get_xlabel() == "training step"


def test_geometry_suite_draws_the_study_figures_into_its_results_folder(drifting, tmp_path):
    from types import SimpleNamespace

    from flatland import CheckContext
    from flatland.results import ResultsFolder
    from flatland_plugins.geometry_checks import _figures

    folder = ResultsFolder(tmp_path / "r")
    res = {"node-dropout": SimpleNamespace(measurement=drifting), "sgd": SimpleNamespace(measurement=drifting)}
    _figures(CheckContext(seed=0, out=folder), res)
    assert folder.figure_errors == []
    assert sorted(folder.figures) == ["figures/geometry-drift_vs_variance_per_pc.png", "figures/geometry-metrics_vs_dt.png"]
    assert all((folder.path / f).stat().st_size > 1000 and len(folder.captions[f]) > 100 for f in folder.figures)


def test_rate_map_figure_says_when_a_snapshot_has_no_place_cells():
    """A layer with no place cell at a sorting step (e.g. a dead or silent network) gets a labelled empty
    panel, not a zero-row image (which warned about singular limits) — and the other rows still draw."""
    import warnings

    from flatland_plugins.relu.figures import ratemaps

    rng = np.random.default_rng(0)
    snaps = []
    for k in range(5):
        si = np.zeros((1, 6)) if k < 3 else np.full((1, 6), 0.5)      # place cells only from snapshot 3 on
        snaps.append({"step": 100 * k, "rate_maps": rng.random((1, 6, 8)), "si": si})
    plt = _plt()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = ratemaps(snaps, plt)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    images = [im for ax in fig.axes for im in ax.get_images()]
    # the rows sorted at snapshots 0, 1, 2 (of the 4 picked: 0, 1, 2, 4) have nothing to sort; every column
    # keeps its step title and every row its label
    assert texts.count("no place cells") == 3 * 4 and len(images) == 1 * 4
    grid = fig.axes[:16]
    assert [ax.get_title() for ax in grid[:4]] == ["step 0", "step 100", "step 200", "step 400"]
    assert [ax.get_ylabel() for ax in grid[::4]] == ["sorted @0", "sorted @100", "sorted @200", "sorted @400"]
    plt.close(fig)
