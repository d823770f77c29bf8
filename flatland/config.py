"""Run configurations: a TOML file → a validated, fully resolved ``RunConfig``.

What: ``load(path)`` reads a TOML file (``tomllib``), checks every section and
key, fills defaults and returns a :class:`RunConfig`; ``to_toml`` writes the
resolved settings back (saved beside the results so a run folder says exactly
what ran). Any mistake — unknown section or key, wrong type, out-of-range value
— is a :class:`~flatland.errors.UserError` with one line naming the key.

Why here: ``flatland run`` and the relu checks share it, and later sweeps
(DESIGN.md) need one folder per run with its resolved settings.

Sections::

    [task]      name = loss plugin (corridor, circular-track, …) + its options
    [network]   n_hid, activation, regime, dtype, alpha
    [rate_maps] n_bins, n_shuffles, shuffle_seed, place_threshold
    [learner]   name + hyperparameters (lr, …) + factory options (per_matrix, …)
    [noise]     name + hyperparameters (sigma, width, …) + factory options (batch, …)
    [run]       steps, seeds, seed, log_every, snapshot_every, checkpoint_every,
                hessian_every, hessian, metrics, prng, step, ensemble
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path

from .errors import UserError

SECTIONS = ("task", "network", "rate_maps", "learner", "noise", "run")
HESSIAN_METHODS = ("gauss-newton", "full", "lanczos", "off")
PRNGS = ("threefry", "rbg", "unsafe_rbg")
STEPS = ("dense", "sparse")
ENSEMBLES = ("loop", "vmap")  # several seeds: one compiled single-seed chunk per seed, or one vmapped chunk

RUN_DEFAULTS = {
    "steps": 100_000,
    "seeds": 1,
    "seed": 0,
    "log_every": 100,
    "snapshot_every": 10_000,
    "checkpoint_every": 50_000,
    "hessian_every": 0,          # 0: at the first and last snapshot only
    "hessian": "gauss-newton",
    "metrics": ["loss_norm", "active_fraction", "active_units", "si", "si_corrected", "place_cells"],
    "prng": "threefry",
    "step": "dense",
    "ensemble": "loop",
}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Resolved settings of one run (every section as a plain dict)."""

    task: dict
    network: dict
    rate_maps: dict
    learner: dict
    noise: dict
    run: dict

    def loss_options(self) -> dict:
        """Options for the loss factory: task options, network and rate-map settings."""
        opts = {k: v for k, v in self.task.items() if k != "name"}
        return opts | self.network | self.rate_maps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _int(section, key, v, minimum=0):
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise UserError(f"[{section}] {key} must be an integer ≥ {minimum}, got {v!r}")
    return v


def _check_value(section, key, v):
    """TOML values allowed in component sections: numbers, strings, booleans (finite)."""
    if isinstance(v, float) and not math.isfinite(v):
        raise UserError(f"[{section}] {key} must be finite, got {v!r}")
    if not isinstance(v, (int, float, str, bool)):
        raise UserError(f"[{section}] {key} must be a number, string or boolean, got {type(v).__name__}")
    return v


def from_dict(raw: dict) -> RunConfig:
    """Validate a parsed TOML document and fill defaults."""
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise UserError(f"unknown config section(s) {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    sections = {}
    for s in SECTIONS:
        sec = raw.get(s, {})
        if not isinstance(sec, dict):
            raise UserError(f"[{s}] must be a table")
        sections[s] = dict(sec)
    for s in ("task", "learner", "noise"):
        name = sections[s].get("name")
        if s == "noise" and name is None:
            sections[s]["name"] = name = "none"
        if not isinstance(name, str) or not name:
            raise UserError(f"[{s}] needs name = \"…\" (a registered component; see `flatland list`)")
    for s in ("task", "network", "rate_maps", "learner", "noise"):
        for k, v in sections[s].items():
            _check_value(s, k, v)
    run = dict(RUN_DEFAULTS)
    bad = sorted(set(sections["run"]) - set(RUN_DEFAULTS))
    if bad:
        raise UserError(f"unknown [run] key(s) {', '.join(bad)} (known: {', '.join(RUN_DEFAULTS)})")
    run.update(sections["run"])
    _int("run", "steps", run["steps"], 1)
    _int("run", "seeds", run["seeds"], 1)
    _int("run", "seed", run["seed"], 0)
    for k in ("log_every", "snapshot_every", "checkpoint_every"):
        _int("run", k, run[k], 1)
    _int("run", "hessian_every", run["hessian_every"], 0)
    if run["snapshot_every"] % run["log_every"]:
        raise UserError(f"[run] snapshot_every ({run['snapshot_every']}) must be a multiple of log_every ({run['log_every']})")
    for k in ("checkpoint_every", "hessian_every", "steps"):
        if run[k] % run["snapshot_every"]:
            raise UserError(f"[run] {k} ({run[k]}) must be a multiple of snapshot_every ({run['snapshot_every']})")
    for k, allowed in (("hessian", HESSIAN_METHODS), ("prng", PRNGS), ("step", STEPS), ("ensemble", ENSEMBLES)):
        if run[k] not in allowed:
            raise UserError(f"[run] {k} must be one of {', '.join(allowed)}, got {run[k]!r}")
    if not isinstance(run["metrics"], list) or not all(isinstance(m, str) for m in run["metrics"]):
        raise UserError("[run] metrics must be a list of metric names")
    sections["run"] = run
    return RunConfig(**sections)


def load(path) -> RunConfig:
    """Read and validate a TOML run configuration."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file") from None
    return from_dict(raw)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(cfg: RunConfig) -> str:
    """The resolved configuration as TOML text (round-trips through :func:`from_dict`)."""
    lines = []
    for s in SECTIONS:
        lines.append(f"[{s}]")
        for k, v in getattr(cfg, s).items():
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)
