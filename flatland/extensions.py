"""Run extensions: what a task plugin adds to ``flatland run`` beyond the generic run.

What: :class:`RunExtension` is the contract of the ``flatland_run_extensions``
hook. ``flatland run`` builds every registered extension and keeps those whose
``applies(loss)`` is true. Each may read its own config table (``section``,
keys and defaults in ``options``), replace the composed step (``step``), add
arrays and CSV rows between chunks (``snapshot``), add entries to
``summary.json`` after the run (``report``) and write figures (``figures``).

Why this shape: the engine keeps everything that must be exact — the compiled
loop, checkpoints, truncating CSVs on resume, atomic writes — and an extension
only *returns* data (:class:`Snapshot`), so a resumed run stays bit-for-bit
whatever the extension does, and the engine never imports a plugin.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from .errors import UserError


@dataclasses.dataclass
class RunContext:
    """What an extension sees of one run.

    ``loss`` is the task's Loss, ``options`` the extension's resolved config
    table (defaults filled), ``run`` the resolved ``[run]`` table (steps,
    seeds, snapshot_every, …), ``cache`` a dict the extension may keep compiled
    functions in (it lives as long as the assembled run, across a resume in the
    same process), ``out`` the run's folder (set when the run starts; a
    ``report`` reads its own CSVs from there, which hold every row also after a
    resume).
    """

    loss: Any
    options: dict
    run: dict
    cache: dict = dataclasses.field(default_factory=dict)
    out: Optional[Path] = None


@dataclasses.dataclass
class Snapshot:
    """What an extension hands back at a chunk boundary; the engine writes it.

    ``arrays`` go into ``snapshots/step_<t>.npz`` (names shared by all active
    extensions, so prefix them if in doubt); ``rows`` maps a CSV file name
    declared in ``RunExtension.tables`` to rows (lists in the declared column
    order). CSVs are append-only and truncated back on resume.
    """

    arrays: dict = dataclasses.field(default_factory=dict)
    rows: dict = dataclasses.field(default_factory=dict)


class RunExtension:
    """Subclass and override what applies; every method has a do-nothing default.

    * ``name`` — shown in messages; ``section`` — its config table ("" for none);
      ``options`` — ``{key: default}`` of that table (a value must have the
      default's type; an int is accepted for a float);
    * ``tables`` — ``{file name: column names}`` of the CSVs its snapshots fill;
    * ``applies(loss)`` — whether it takes part in a run of this loss;
    * ``check(ctx)`` — raise :class:`~flatland.UserError` for a bad option value;
    * ``step(ctx, noise, learner)`` — a replacement for ``make_step(loss, noise,
      learner)`` (same signature and random numbers), or None;
    * ``snapshot(ctx, t, params, final)`` — at step 0 and after every chunk;
      ``params`` carry a leading seed axis; returns a :class:`Snapshot` or None;
    * ``report(ctx, summary, curves)`` — entries added to ``summary.json``;
      ``curves`` are the seed means ``{"step": ..., metric: ...}``; a ``notes``
      list of one-line strings is printed by ``flatland run``;
    * ``figures(ctx, out)`` — write PNGs into ``out/figures``; return their paths, or
      ``(path, caption)`` pairs: the captions go into ``out/figures/README.md``;
    * ``sweep_report(table, out)`` — for ``flatland report``: a
      :class:`~flatland.SweepSection` of claims about a sweep's table (a pandas
      DataFrame, one row per run; judge them with :mod:`flatland.sweep_stats`)
      with figures written into ``out/figures``, or None when the table holds
      none of this extension's runs.
    """

    name: str = "extension"
    section: str = ""
    options: Mapping[str, Any] = {}
    tables: Mapping[str, tuple] = {}

    def applies(self, loss) -> bool:
        return False

    def check(self, ctx: RunContext) -> None:
        return None

    def step(self, ctx: RunContext, noise, learner) -> Optional[Callable]:
        return None

    def snapshot(self, ctx: RunContext, t: int, params, final: bool) -> Optional[Snapshot]:
        return None

    def report(self, ctx: RunContext, summary: dict, curves: dict) -> dict:
        return {}

    def figures(self, ctx: RunContext, out: Path) -> list:
        return []

    def sweep_report(self, table, out: Path):
        return None

    def __repr__(self) -> str:
        return f"<run extension {self.name}>"


def resolve_options(ext: RunExtension, given: Mapping[str, Any]) -> dict:
    """The extension's table with defaults filled; an unknown key or wrong type is a one-line UserError."""
    where = f"[{ext.section}]"
    unknown = sorted(set(given) - set(ext.options))
    if unknown:
        raise UserError(f"unknown {where} key(s) {', '.join(unknown)} (known: {', '.join(ext.options) or 'none'})")
    out = dict(ext.options)
    for k, v in given.items():
        d = ext.options[k]
        ok = type(v) is type(d) or (isinstance(d, float) and type(v) is int)
        if not ok:
            kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
                type(d), f"a {type(d).__name__}")
            raise UserError(f"{where} {k} must be {kind} like its default {d!r}, got {v!r}")
        out[k] = float(v) if isinstance(d, float) else v
    return out


def check_run_extension(ext) -> None:
    """Contract check for the conformance kit: the right type, a name, consistent declarations."""
    assert isinstance(ext, RunExtension), f"run extension factory returned {type(ext).__name__}, not RunExtension"
    assert isinstance(ext.name, str) and ext.name, "run extension needs a name"
    assert isinstance(ext.section, str), f"run extension {ext.name}: section must be a string"
    assert not ext.options or ext.section, f"run extension {ext.name}: options need a section to live in"
    assert ext.section not in ("task", "learner", "noise", "run"), f"run extension {ext.name}: section clashes"
    for fname, cols in ext.tables.items():
        assert fname.endswith(".csv") and "/" not in fname, f"run extension {ext.name}: table {fname!r}"
        assert len(cols) >= 1 and all(isinstance(c, str) for c in cols), f"run extension {ext.name}: {fname} columns"
