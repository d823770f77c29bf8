"""Sweep files: a base run configuration and axes → the list of runs a study consists of.

What: ``load(path)`` reads a sweep TOML file and ``expand(raw, base_dir)``
turns it into :class:`Point` s, each an ordinary, validated
:class:`~flatland.config.RunConfig` (so any point can be re-run alone with
``flatland run``) with the overrides that make it, a stable id and its index.

Format::

    [sweep]
    base = "../small.toml"       # a run config, relative to this file (or a [base] table inline)
    draws = 20                   # random draws per grid combination (needed when an axis is random)
    seed = 0                     # seeds the random draws: the same file always gives the same points

    [axes]
    "learner.lr" = [0.05, 0.1]                          # a list: a grid axis
    "run.seed" = { seeds = 4 }                          # seeds 0..3: a grid axis
    "noise.name" = ["gradient", "uniform-label"]
    "noise.sigma" = { log_uniform = [0.01, 0.1], when = { "noise.name" = "gradient" } }
    "noise.width" = { log_uniform = [0.1, 1.0], when = { "noise.name" = "uniform-label" } }
    "task.n_hid" = { uniform_int = [50, 150] }          # also: uniform = [lo, hi]

Axis keys are ``section.key`` of the run config — or ``section.table.key`` for an
option of one component of a composed model, e.g. ``"noise.node-dropout.p"`` for
``[noise.node-dropout] p`` under ``name = ["node-dropout", "sgd-minibatch"]`` —
optionally with a ``#label``
(``"learner.lr#adam"``) so that one key can have several axes under different
``when`` conditions; two axes that both apply to one point and set the same key
are an error, and so are an axis on a whole table and one on its options. Grid axes (lists, ``grid``,
``seeds``) form a Cartesian product; random axes (``uniform``,
``log_uniform``, ``uniform_int``, inclusive bounds) are drawn ``draws`` times
per grid combination. ``when`` makes an axis conditional: it applies only to
points whose (already assigned, or base) values match every ``key = value``
given; conditions are read in file order, so a condition may name an axis
declared above it. A point's random values depend only on ``seed`` and the
point's grid combination and draw number, never on the other points.

Why its own module: the sweep runner, ``--resume`` and the results table all
need the same expansion, and a mistake in a sweep file must stop with one line
before any run starts.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from .config import SECTIONS, RunConfig, from_dict, read_toml
from .errors import UserError

GRID_FORMS = ("grid", "seeds")
RANDOM_FORMS = ("uniform", "log_uniform", "uniform_int")
MAX_POINTS = 100_000


@dataclasses.dataclass(frozen=True)
class Point:
    """One run of a sweep: its position, the axis values that make it, and its resolved config."""

    index: int
    id: str              # stable across re-expansions: a hash of the overrides
    overrides: dict      # {"section.key" or "section.table.key": value}
    config: RunConfig


@dataclasses.dataclass(frozen=True)
class _Axis:
    key: str             # the axis's name in the file: "section.key" or "section.table.key", optionally "#label"
    form: str            # "list" | "grid" | "seeds" | a RANDOM_FORMS entry
    values: tuple        # grid values, or (lo, hi) for a random axis
    when: dict

    @property
    def random(self) -> bool:
        return self.form in RANDOM_FORMS

    @property
    def target(self) -> str:
        """The config key it sets ("section.key" or "section.table.key")."""
        return self.key.split("#")[0]


def _where(key: str) -> str:
    return f"[axes] {key!r}"


def _is_config_key(k) -> bool:
    """Whether ``k`` has the shape "section.key" or "section.table.key" (axis targets and when keys)."""
    return isinstance(k, str) and k.count(".") in (1, 2) and all(k.split(".")) and "#" not in k


def _parse_axis(key: str, spec, sections) -> _Axis:
    target = key.split("#")[0] if isinstance(key, str) else key
    if not isinstance(key, str) or not _is_config_key(target) or key.count("#") > 1 or key.endswith("#"):
        raise UserError(f"{_where(key)}: an axis is named section.key (e.g. \"learner.lr\") or section.table.key "
                        "(e.g. \"noise.node-dropout.p\"), optionally with a #label (\"learner.lr#adam\")")
    if key.split(".")[0] not in sections:
        raise UserError(f"{_where(key)}: unknown section {key.split('.')[0]!r} "
                        f"(known: {', '.join(sorted(sections))})")
    if isinstance(spec, list):
        spec = {"grid": spec}
    if not isinstance(spec, dict):
        raise UserError(f"{_where(key)}: give a list of values or a table such as {{ log_uniform = [lo, hi] }}")
    when = spec.get("when", {})
    if not isinstance(when, dict) or not all(_is_config_key(k) and k.split(".")[0] in sections for k in when):
        raise UserError(f"{_where(key)}: when must be a table of \"section.key\" (or \"section.table.key\") = value "
                        f"with a known section ({', '.join(sorted(sections))})")
    forms = [f for f in spec if f != "when"]
    if len(forms) != 1 or forms[0] not in GRID_FORMS + RANDOM_FORMS:
        raise UserError(f"{_where(key)}: give exactly one of {', '.join(GRID_FORMS + RANDOM_FORMS)} "
                        f"(got {', '.join(forms) or 'none'})")
    form, v = forms[0], spec[forms[0]]
    if form == "grid":
        if not isinstance(v, list) or not v:
            raise UserError(f"{_where(key)}: grid must be a non-empty list of values")
        return _Axis(key, form, tuple(v), when)
    if form == "seeds":
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_POINTS:
            raise UserError(f"{_where(key)}: seeds must be a whole number ≥ 1 (the seeds 0 … N−1)")
        return _Axis(key, form, tuple(range(v)), when)
    ok = (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                       and math.isfinite(x) for x in v) and v[0] <= v[1])
    if not ok or (form == "log_uniform" and v[0] <= 0) or (form == "uniform_int" and not all(
            isinstance(x, int) for x in v)):
        need = {"uniform": "two finite numbers lo ≤ hi", "log_uniform": "two numbers 0 < lo ≤ hi",
                "uniform_int": "two whole numbers lo ≤ hi"}[form]
        raise UserError(f"{_where(key)}: {form} needs [lo, hi], {need}; got {v!r}")
    return _Axis(key, form, tuple(v), when)


def _draw(axis: _Axis, rng: np.random.Generator):
    lo, hi = axis.values
    if axis.form == "uniform":
        return float(rng.uniform(lo, hi))
    if axis.form == "log_uniform":
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return int(rng.integers(lo, hi, endpoint=True))


def _applies(axis: _Axis, values: dict, base: dict) -> bool:
    def current(k):
        if k in values:
            return values[k]
        node = base
        for part in k.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node
    return all(current(k) == v for k, v in axis.when.items())


def _set(values: dict, axis: _Axis, value) -> dict:
    """``values`` with ``axis.target`` set; a second axis setting the same key is an error."""
    if axis.target in values.get("#set", {}):
        raise UserError(f"axes {values['#set'][axis.target]!r} and {axis.key!r} both set {axis.target} for one "
                        "point; make their when conditions exclusive")
    return dict(values, **{axis.target: value, "#set": dict(values.get("#set", {}), **{axis.target: axis.key})})


def _base(raw: dict, base_dir: Path) -> dict:
    sweep = raw.get("sweep", {})
    if "base" in sweep and "base" in raw:
        raise UserError("give the base run config once: [sweep] base = \"file.toml\" or a [base] table, not both")
    if "base" in raw:
        if not isinstance(raw["base"], dict):
            raise UserError("[base] must be a table holding a run config ([base.task], [base.learner], …)")
        return raw["base"]
    if "base" not in sweep:
        raise UserError("a sweep needs a base run config: [sweep] base = \"file.toml\" or a [base] table")
    if not isinstance(sweep["base"], str):
        raise UserError("[sweep] base must be the path of a run config (a string)")
    return read_toml(base_dir / sweep["base"], "[sweep] base: run config")


def _point_id(overrides: dict) -> str:
    return hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:10]


def expand(raw: dict, base_dir=".") -> list[Point]:
    """The sweep's points, in a stable order (grid combinations, then draws). See the module doc."""
    unknown = sorted(set(raw) - {"sweep", "axes", "base"})
    if unknown:
        raise UserError(f"unknown sweep table(s) {', '.join(unknown)} (known: sweep, axes, base)")
    sweep = raw.get("sweep", {})
    if not isinstance(sweep, dict):
        raise UserError("[sweep] must be a table")
    bad = sorted(set(sweep) - {"base", "draws", "seed"})
    if bad:
        raise UserError(f"unknown [sweep] key(s) {', '.join(bad)} (known: base, draws, seed)")
    base = _base(raw, Path(base_dir))
    axes_raw = raw.get("axes", {})
    if not isinstance(axes_raw, dict) or not axes_raw:
        raise UserError("[axes] must name at least one axis, e.g. \"learner.lr\" = [0.05, 0.1]")
    sections = set(SECTIONS) | set(base)
    axes = [_parse_axis(k, v, sections) for k, v in axes_raw.items()]
    targets = sorted({a.target for a in axes})
    overlap = [(b, a) for a in targets for b in targets if b.startswith(a + ".")]
    if overlap:   # a whole table and one of its options: one would silently undo the other
        raise UserError(f"[axes] {overlap[0][0]!r} and {overlap[0][1]!r} overlap: sweep a component's options one by "
                        "one or as a whole table, not both")
    random = [a for a in axes if a.random]
    draws = sweep.get("draws", 1 if not random else None)
    if draws is None:
        raise UserError(f"[sweep] draws = N is needed: {random[0].key!r} is drawn at random")
    seed = sweep.get("seed", 0)
    for name, v, lo in (("draws", draws, 1), ("seed", seed, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise UserError(f"[sweep] {name} must be a whole number ≥ {lo}, got {v!r}")
    if draws != 1 and not random:
        raise UserError(f"[sweep] draws = {draws} repeats identical points: no axis is drawn at random "
                        "(use \"run.seed\" = { seeds = N } for repeats)")

    selfish = [a.key for a in axes if a.target in a.when]
    if selfish:
        raise UserError(f"[axes] {selfish[0]!r}: its when tests the key the axis itself sets; condition it on another key")
    used = set()   # axes that apply to at least one point
    combos = [{}]
    for axis in axes:  # grid axes in file order; a conditional one multiplies only the combos it applies to
        if axis.random:
            continue
        applies = [_applies(axis, c, base) for c in combos]
        used |= {axis.key} if any(applies) else set()
        combos = [d for c, ok in zip(combos, applies)
                  for d in ([_set(c, axis, v) for v in axis.values] if ok else [c])]
        if len(combos) * draws > MAX_POINTS:
            raise UserError(f"the sweep has more than {MAX_POINTS:,} points; split it")
    points = []
    for ci, combo in enumerate(combos):
        for d in range(draws):
            rng = np.random.default_rng([seed, ci, d])
            values = dict(combo)
            for axis in random:
                if _applies(axis, values, base):
                    used.add(axis.key)
                    values = _set(values, axis, _draw(axis, rng))
            overrides = {t: values[t] for t in dict.fromkeys(a.target for a in axes) if t in values}
            points.append(_resolve(len(points), overrides, base))
    unused = [a for a in axes if a.key not in used]
    if unused:   # a typo in a when key or value would otherwise drop the axis silently
        a = unused[0]
        conds = ", ".join(f"{k} = {v!r}" for k, v in a.when.items())
        raise UserError(f"[axes] {a.key!r} applies to no point: no point has {conds} (is the key set by the base or "
                        "an axis, and the value one of theirs?)")
    return points


def _resolve(index: int, overrides: dict, base: dict) -> Point:
    doc = copy.deepcopy(base)
    for key, value in overrides.items():
        *path, k = key.split(".")
        node = doc
        for i, part in enumerate(path):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"sweep axis {key!r}: {'.'.join(path[:i + 1])} is a value, not a table")
        node[k] = copy.deepcopy(value)      # points never share a value (a table) with each other or the axis
    try:
        cfg = from_dict(doc)
    except UserError as exc:
        raise UserError(f"sweep point {index} ({', '.join(f'{k}={v!r}' for k, v in overrides.items())}): "
                        f"{exc}") from None
    return Point(index, _point_id(overrides), overrides, cfg)


def load(path) -> list[Point]:
    """Read a sweep file and expand it (base paths are relative to the file)."""
    return expand(read_toml(path, "sweep file"), Path(path).parent)
