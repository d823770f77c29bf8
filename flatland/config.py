"""Run configurations: a TOML file → a validated, fully resolved ``RunConfig``.

What: ``load(path)`` reads a TOML file (``tomllib``), checks the core sections
and their keys, fills defaults and returns a :class:`RunConfig`; ``to_toml``
writes the resolved settings back (saved beside the results so a run folder
says exactly what ran). Any mistake — unknown key, wrong type, out-of-range
value — is a :class:`~flatland.errors.UserError` with one line naming the key.

Sections::

    [task]      name = a registered loss + its factory's options (n_hid, seed, point, …);
                start = [..] starts a loss with a point (1-D params) there
    [learner]   name + hyperparameters (lr, …) + factory options (per_matrix, …)
    [noise]     name + hyperparameters (sigma, width, …) + factory options (batch, …)
    [run]       steps, seeds, seed, log_every, snapshot_every, checkpoint_every,
                metrics, prng, ensemble
    [<other>]   a run extension's table (e.g. [relu]); kept as given here and
                checked by :mod:`flatland.runner` against the extensions that apply

Why extension tables pass through: which tables exist depends on the installed
plugins, which only the assembled registry knows.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from pathlib import Path

from .errors import UserError

SECTIONS = ("task", "learner", "noise", "run")
INT64 = 2**63 - 1
PRNGS = ("threefry", "philox", "rbg", "unsafe_rbg")
TASK_RUN_KEYS = ("name", "start")   # [task] keys the runner reads; the rest go to the loss factory
# several seeds: one compiled single-seed chunk per seed, one vmapped chunk, or "auto" (run_build.ensemble_mode)
ENSEMBLES = ("auto", "loop", "vmap")

RUN_DEFAULTS = {
    "steps": 100_000,
    "seeds": 1,
    "seed": 0,
    "log_every": 100,
    "snapshot_every": 10_000,
    "checkpoint_every": 50_000,
    "metrics": ["loss"],         # registered metric names (`flatland list metrics`)
    "prng": "threefry",
    "ensemble": "auto",
}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Resolved settings of one run (every section as a plain dict)."""

    task: dict
    learner: dict
    noise: dict
    run: dict
    extensions: dict = dataclasses.field(default_factory=dict)   # {table name: {key: value}}

    def loss_options(self) -> dict:
        """Options for the loss factory: the task table without ``name`` and ``start``."""
        return {k: v for k, v in self.task.items() if k not in TASK_RUN_KEYS}

    def to_dict(self) -> dict:
        """The TOML document as a dict: core tables, then extension tables (``from_dict`` reads it back)."""
        d = {s: dict(getattr(self, s)) for s in SECTIONS}
        d["run"]["metrics"] = list(d["run"]["metrics"])
        return d | {k: dict(v) for k, v in sorted(self.extensions.items())}


def _int(section, key, v, minimum=0, maximum=None):
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise UserError(f"[{section}] {key} must be an integer ≥ {minimum}, got {v!r}")
    if maximum is not None and v > maximum:
        raise UserError(f"[{section}] {key} must be an integer from {minimum} to {maximum}, got {v!r}")
    return v


def _check_value(section, key, v, lists=False):
    """TOML values allowed in component sections: numbers, strings, booleans (finite);
    with ``lists``, also a list of numbers (a point such as ``start = [1.0, 0.0]``)."""
    if lists and isinstance(v, list):
        for x in v:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise UserError(f"[{section}] {key} must be a list of numbers, got {v!r}")
            _check_value(section, key, x)
        return v
    if isinstance(v, float) and not math.isfinite(v):
        raise UserError(f"[{section}] {key} must be finite, got {v!r}")
    if not isinstance(v, (int, float, str, bool)):
        raise UserError(f"[{section}] {key} must be a number, string or boolean, got {type(v).__name__}")
    return v


def _check_composed_noise(section: dict) -> None:
    """``[noise] name = ["a", "b"]`` with each member's settings in its own ``[noise.a]`` table."""
    names = section["name"]
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) < len(names):
        raise UserError("[noise] name must be a noise model's name or a list of distinct names, got "
                        f"{names!r}")
    for k, v in section.items():
        if k == "name":
            continue
        if isinstance(v, dict) and k not in names:   # a table whose member is missing from name: one is misspelt
            untabled = [n for n in names if n not in section]
            near = difflib.get_close_matches(k, untabled, n=1, cutoff=0.6)
            hint = f"; name lists {near[0]!r} — one of the two is misspelt" if near else ""
            raise UserError(f"[noise.{k}] is the table of a noise model that [noise] name = {names!r} does not "
                            f"list{hint}")
        if k not in names or not isinstance(v, dict):
            raise UserError(f"[noise] {k}: with several noise models, each one's settings go in its own table "
                            f"[noise.NAME] (NAME one of {', '.join(names)})")
        for kk, vv in v.items():
            _check_value(f"noise.{k}", kk, vv)


def from_dict(raw: dict) -> RunConfig:
    """Validate a parsed TOML document and fill defaults."""
    sections, extensions = {}, {}
    for s in raw:
        if not isinstance(raw[s], dict):
            raise UserError(f"[{s}] must be a table" if s in SECTIONS else f"{s} must be a [table] (a config section)")
    for s in SECTIONS:
        sections[s] = dict(raw.get(s, {}))
    for s in sorted(set(raw) - set(SECTIONS)):
        near = difflib.get_close_matches(s, SECTIONS, n=1, cutoff=0.75)
        if not near:   # less alike, but holding only a core section's own keys ([rnu] with metrics = [...])
            near = [c for c in difflib.get_close_matches(s, SECTIONS, n=4, cutoff=0.5)
                    if raw[s] and set(raw[s]) <= (set(RUN_DEFAULTS) if c == "run" else {"name"})][:1]
        if near:  # a misspelt core section would otherwise be read as an extension's table
            raise UserError(f"unknown config section [{s}] — did you mean [{near[0]}]? "
                            f"(core sections: {', '.join(SECTIONS)})")
        extensions[s] = dict(raw[s])
        for k, v in extensions[s].items():
            _check_value(s, k, v, lists=True)
    for s in ("task", "learner", "noise"):
        name = sections[s].get("name")
        if s == "noise" and name is None:
            sections[s]["name"] = name = "none"
        if s == "noise" and isinstance(name, list):
            _check_composed_noise(sections[s])
            continue
        if not isinstance(name, str) or not name:
            raise UserError(f"[{s}] needs name = \"…\" (a registered component; see `flatland list`)")
    for s in ("task", "learner", "noise"):
        if s == "noise" and isinstance(sections[s]["name"], list):
            continue
        for k, v in sections[s].items():
            if isinstance(v, dict):     # [noise.X] beside a single name: a composed list that lost its brackets?
                name = sections[s]["name"]
                several = " (several noise models: name = [\"a\", \"b\"], each with its table [noise.a])"
                if name == k:
                    typo = f"; move the keys of [{s}.{k}] into [{s}]"
                else:
                    typo = (f"; is {name!r} a misspelling of {k!r}?"
                            if difflib.get_close_matches(name, [k], cutoff=0.75) else "")
                raise UserError(f"[{s}.{k}] is a table, but [{s}] name = {name!r} is one component whose options go "
                                f"in [{s}] itself" + (several if s == "noise" else "") + typo)
            _check_value(s, k, v, lists=(s == "task"))
    run = dict(RUN_DEFAULTS)
    bad = sorted(set(sections["run"]) - set(RUN_DEFAULTS))
    if bad:
        raise UserError(f"unknown [run] key(s) {', '.join(bad)} (known: {', '.join(RUN_DEFAULTS)})")
    run.update(sections["run"])
    _int("run", "steps", run["steps"], 1, INT64)         # counts fit int64: tables and arrays hold them
    _int("run", "seeds", run["seeds"], 1, INT64)
    _int("run", "seed", run["seed"], 0, INT64)             # the PRNG key takes a signed 64-bit seed
    for k in ("log_every", "snapshot_every", "checkpoint_every"):
        _int("run", k, run[k], 1, INT64)
    def shown(k):   # a period the user did not set is named as the default, so the fix is clear
        return f"{run[k]}" + ("" if k in sections["run"] else f", the default; set {k} too")

    if run["snapshot_every"] % run["log_every"]:
        raise UserError(f"[run] snapshot_every ({shown('snapshot_every')}) must be a multiple of log_every "
                        f"({shown('log_every')})")
    if run["checkpoint_every"] % run["snapshot_every"]:
        raise UserError(f"[run] checkpoint_every ({shown('checkpoint_every')}) must be a multiple of "
                        f"snapshot_every ({shown('snapshot_every')})")
    for k, allowed in (("prng", PRNGS), ("ensemble", ENSEMBLES)):
        if run[k] not in allowed:
            raise UserError(f"[run] {k} must be one of {', '.join(allowed)}, got {run[k]!r}")
    if (not isinstance(run["metrics"], list) or not run["metrics"]
            or not all(isinstance(m, str) for m in run["metrics"])):
        raise UserError("[run] metrics must be a non-empty list of metric names (see `flatland list metrics`)")
    if len(set(run["metrics"])) != len(run["metrics"]):
        raise UserError(f"[run] metrics lists a name twice: {run['metrics']}")
    run["metrics"] = list(run["metrics"])
    sections["run"] = run
    return RunConfig(**sections, extensions=extensions)


def read_toml(path, what: str = "config file") -> dict:
    """A TOML file as a dict, or a one-line UserError (missing, not TOML, not text)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a folder; give the path of a .toml file")
    if not path.is_file():
        raise UserError(f"{what} {str(path)!r} not found")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file") from None


def load(path) -> RunConfig:
    """Read and validate a TOML run configuration."""
    return from_dict(read_toml(path))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # a composed noise member's settings, as an inline table
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(cfg: RunConfig) -> str:
    """The resolved configuration as TOML text (round-trips through :func:`from_dict`)."""
    lines = []
    for s, table in cfg.to_dict().items():
        lines.append(f"[{s}]")
        for k, v in table.items():
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)
