"""Sweep files → points: grids, seeds, random draws, conditional axes, one-line errors."""
import math
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from flatland.errors import UserError
from flatland.sweep_spec import expand, load

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BASE = {"task": {"name": "fig5a"}, "learner": {"name": "gd", "lr": 0.05}, "noise": {"name": "update", "sigma": 0.01},
        "run": {"steps": 100, "log_every": 10, "snapshot_every": 50, "checkpoint_every": 100}}


def sweep(axes, **kw):
    return {"sweep": kw, "base": BASE, "axes": axes}


def test_grid_product_and_seeds_in_file_order():
    pts = expand(sweep({"learner.lr": [0.01, 0.02, 0.03], "run.seed": {"seeds": 2}}))
    assert [p.overrides for p in pts] == [{"learner.lr": lr, "run.seed": s} for lr in (0.01, 0.02, 0.03) for s in (0, 1)]
    assert [p.index for p in pts] == list(range(6))
    assert pts[3].config.learner["lr"] == 0.02 and pts[3].config.run["seed"] == 1
    assert len({p.id for p in pts}) == 6


def test_random_axes_are_reproducible_within_bounds_and_independent_of_other_points():
    spec = sweep({"noise.sigma": {"log_uniform": [0.01, 0.1]}, "run.steps": {"uniform_int": [100, 200]}},
                 draws=50, seed=3)
    a, b = expand(spec), expand(spec)
    assert [p.overrides for p in a] == [p.overrides for p in b]
    sig = [p.overrides["noise.sigma"] for p in a]
    assert all(0.01 <= s <= 0.1 for s in sig) and len(set(sig)) == 50
    assert all(isinstance(p.overrides["run.steps"], int) and 100 <= p.overrides["run.steps"] <= 200 for p in a)
    # log-uniform: about half the draws below the geometric mean √(0.01·0.1)
    assert 15 <= sum(s < math.sqrt(1e-3) for s in sig) <= 35
    # adding a grid value keeps the draws of the combinations that were already there
    more = expand(sweep({"learner.lr": [0.05, 0.07], "noise.sigma": {"log_uniform": [0.01, 0.1]}}, draws=3, seed=1))
    fewer = expand(sweep({"learner.lr": [0.05], "noise.sigma": {"log_uniform": [0.01, 0.1]}}, draws=3, seed=1))
    assert [p.overrides for p in more[:3]] == [p.overrides for p in fewer]


def test_conditional_axes_apply_only_where_their_condition_holds():
    pts = expand(sweep({"noise.name": ["update", "uniform-label"],
                        "noise.sigma": {"log_uniform": [0.01, 0.1], "when": {"noise.name": "update"}},
                        "noise.width": {"grid": [0.5, 1.0], "when": {"noise.name": "uniform-label"}}},
                       draws=2))
    upd = [p for p in pts if p.overrides["noise.name"] == "update"]
    lab = [p for p in pts if p.overrides["noise.name"] == "uniform-label"]
    assert len(upd) == 2 and all("noise.width" not in p.overrides and "noise.sigma" in p.overrides for p in upd)
    assert len(lab) == 4 and all("noise.width" in p.overrides for p in lab)
    # a label-noise point without its own sigma keeps the base value (here unused by uniform-label)
    assert {p.overrides["noise.width"] for p in lab} == {0.5, 1.0}


def test_base_from_a_file_relative_to_the_sweep(tmp_path):
    (tmp_path / "base.toml").write_text((EXAMPLES / "small.toml").read_text())
    (tmp_path / "s.toml").write_text('[sweep]\nbase = "base.toml"\n[axes]\n"noise.sigma" = [0.01, 0.02]\n')
    pts = load(tmp_path / "s.toml")
    assert [p.config.noise["sigma"] for p in pts] == [0.01, 0.02]
    assert pts[0].config.extensions["relu"]["hessian"] == "gauss-newton"


@pytest.mark.parametrize("spec, words", [
    ({"sweep": {}, "axes": {"learner.lr": [1]}}, "needs a base run config"),
    (sweep({}), "at least one axis"),
    (sweep({"lr": [1]}), "section.key"),
    (sweep({"model.lr": [1]}), "unknown section 'model'"),
    (sweep({"learner.lr": {"log_uniform": [0.1, 0.01]}}, draws=2), "0 < lo ≤ hi"),
    (sweep({"learner.lr": {"log_uniform": [0, 0.01]}}, draws=2), "0 < lo ≤ hi"),
    (sweep({"learner.lr": {"uniform": [0.1]}}, draws=2), "[lo, hi]"),
    (sweep({"learner.lr": {"normal": [0, 1]}}), "exactly one of"),
    (sweep({"learner.lr": {"log_uniform": [0.01, 0.1]}}), "draws = N is needed"),
    (sweep({"learner.lr": [0.1]}, draws=3), "repeats identical points"),
    (sweep({"learner.lr": [0.1]}, draws="3"), "whole number"),
    (sweep({"run.seed": {"seeds": 0}}), "seeds must be"),
    (sweep({"run.steps": [0]}), "sweep point 0 (run.steps=0)"),
    (sweep({"learner.lr": []}), "non-empty"),
    ({"sweep": {"base": "nowhere.toml"}, "axes": {"learner.lr": [1]}}, "not found"),
    ({**sweep({"learner.lr": [1]}), "extra": {}}, "unknown sweep table"),
    # a when that matches no point dropped the axis silently (typo in the key, or in the value)
    (sweep({"learner.lr": {"grid": [0.5], "when": {"learner.nam": "gd"}}}), "applies to no point"),
    (sweep({"learner.lr": {"grid": [0.5], "when": {"learner.name": "gd2"}}}), "applies to no point"),
    (sweep({"learner.lr": {"grid": [0.5], "when": {"learner.lr": 0.05}}}), "tests the key the axis itself sets"),
    # an integer beyond int64 crashed the results table (an internal error after the sweep ran)
    (sweep({"run.seeds": [10 ** 20]}), "an integer from 1 to"),
])
def test_mistakes_are_one_line_user_errors(spec, words):
    with pytest.raises(UserError) as e:
        expand(spec)
    assert words in str(e.value) and "\n" not in str(e.value)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 4))
def test_point_count_is_the_product_of_grid_sizes_times_draws(sizes, draws):
    axes = {f"learner.a{i}": list(range(n)) for i, n in enumerate(sizes)}
    axes["noise.sigma"] = {"uniform": [0.0, 1.0]}
    pts = expand(sweep(axes, draws=draws))
    assert len(pts) == math.prod(sizes) * draws
    assert len({p.id for p in pts}) == len(pts)


def test_one_key_may_have_several_labelled_axes_under_exclusive_conditions():
    raw = {"base": BASE, "sweep": {"draws": 2},
           "axes": {"learner.name": ["gd", "adam"],
                    "learner.lr": {"uniform": [0.05, 0.15], "when": {"learner.name": "gd"}},
                    "learner.lr#adam": {"log_uniform": [1e-4, 1e-3], "when": {"learner.name": "adam"}}}}
    pts = expand(raw)
    lrs = {p.config.learner["name"]: [] for p in pts}
    for p in pts:
        lrs[p.config.learner["name"]].append(p.config.learner["lr"])
        assert set(p.overrides) == {"learner.name", "learner.lr"}
    assert all(0.05 <= v <= 0.15 for v in lrs["gd"]) and all(1e-4 <= v <= 1e-3 for v in lrs["adam"])
    clash = dict(raw, axes=dict(raw["axes"], **{"learner.lr#adam": {"uniform": [0.1, 0.2]}}))
    with pytest.raises(UserError, match="both set learner.lr"):
        expand(clash)
    with pytest.raises(UserError, match="#label"):
        expand(dict(raw, axes={"learner.lr#": [0.1]}))


@pytest.mark.parametrize("path", sorted((EXAMPLES / "sweeps").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_sweep_file_expands_into_runs_of_registered_components(path):
    """A shipped sweep that fails its own validation (or names a component no plugin registers) would
    only be found after a user starts it."""
    from flatland.assembly import assemble

    reg = assemble().registry
    points = load(path)
    assert points
    for p in points:
        reg.entry("losses", p.config.task["name"])
        reg.entry("learners", p.config.learner["name"])
        names = p.config.noise["name"]
        for n in [names] if isinstance(names, str) else names:
            reg.entry("noise", n)


def test_an_axis_may_set_an_option_of_one_component_of_a_composed_model(tmp_path):
    """``section.table.key`` sets ``[noise.node-dropout] p`` without touching the base's other tables,
    ``when`` reads nested values, and the results table has one column per component option."""
    from flatland.sweep_table import run_row

    base = dict(BASE, noise={"name": ["update", "gradient"], "update": {"sigma": 0.01}, "gradient": {"sigma": 0.1}})
    pts = expand({"sweep": {}, "base": base, "axes": {
        "noise.update.sigma": [0.02, 0.03],
        "learner.lr": {"grid": [0.2], "when": {"noise.gradient.sigma": 0.1}}}})
    assert [p.config.noise["update"]["sigma"] for p in pts] == [0.02, 0.03]
    assert all(p.config.noise["gradient"] == {"sigma": 0.1} and p.config.learner["lr"] == 0.2 for p in pts)
    assert base["noise"]["update"] == {"sigma": 0.01}                     # the base is not modified
    row = run_row(pts[1], tmp_path / "none")
    assert row["noise.update.sigma"] == 0.03 and row["noise.gradient.sigma"] == 0.1
    assert row["noise.name"] == '["update", "gradient"]'
    with pytest.raises(UserError, match="'learner.lr.x': learner.lr is a value, not a table"):
        expand({"sweep": {}, "base": BASE, "axes": {"learner.lr.x": [1]}})
    with pytest.raises(UserError, match="section.table.key"):
        expand({"sweep": {}, "base": BASE, "axes": {"noise.a.b.c": [1]}})
    # a whole component table and one of its options on two axes: one would silently undo the other
    with pytest.raises(UserError, match="'noise.update.sigma' and 'noise.update' overlap"):
        expand({"sweep": {}, "base": base, "axes": {"noise.update": [{"sigma": 0.1}, {"sigma": 0.2}],
                                                    "noise.update.sigma": [0.5, 0.6]}})
    # a table-valued grid: each point gets its own copy, not one dict shared by all points
    pts = expand({"sweep": {}, "base": base, "axes": {"noise.update": [{"sigma": 0.1}], "run.seed": {"seeds": 2}}})
    assert pts[0].config.noise["update"] is not pts[1].config.noise["update"]
    # when keys follow the axis-key rule (a typo used to drop the axis silently)
    for bad in ("nosie.update.sigma", "noise.a.b.c"):
        with pytest.raises(UserError, match="when must be a table of"):
            expand({"sweep": {}, "base": base, "axes": {"learner.lr": {"grid": [0.1], "when": {bad: 1}}}})
