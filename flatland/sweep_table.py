"""One results-table row per sweep point, read from the point's ordinary run folder.

What: ``run_row(point, run_dir)`` flattens what a run left behind — its
``summary.json`` (written by :func:`flatland.runner.run` at the end), its
checkpoint, or an ``error.txt`` a sweep runner writes when a run raises — into
a flat dict: the point's index and id, every config value as a
``section.key`` column (a composed model's component options as
``section.table.key``, e.g. ``noise.node-dropout.p``), the run's status (``done``, ``diverged``, ``failed``,
``partial``, ``pending``) with a one-line reason, steps done and wall time,
``initial.<metric>`` and ``final.<metric>`` seed means, the run's ``notes``
(one text, " | " between notes; empty when none), and each scalar of an
extension's report (e.g. ``timescale.tau``, ``timescale.r2``,
``timescale.ok``) under its report's name.

``write_table(rows, path)`` writes the rows as one Parquet file (atomically;
pandas and pyarrow read it), ``read_table(path)`` reads it back as a
``pandas.DataFrame``. Columns a row lacks (e.g. ``noise.width`` in a row
without label noise) are missing values; a column whose values mix kinds is
written as text.

Why here: the sweep runner, ``--resume`` (which redoes only rows that are not
``done``/``diverged``) and ``flatland report`` read the same rows; the run
folder stays the single source of truth, so a table can always be rebuilt
from the folders.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .errors import UserError
from .sweep_spec import Point

ERROR_FILE = "error.txt"
FINISHED = ("done", "diverged")


def _scalar(v):
    """Table cell: numbers, strings and booleans as they are; None as NaN; lists/dicts as JSON text."""
    if v is None:
        return math.nan
    if isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, default=float)


def mechanism_of(learner: str, noise) -> str:
    """The label of a run: 'learner' or 'learner + noise' (noise 'none' and missing noise left out).

    A composed noise model (a list of names, or the table's JSON text of one) reads
    'learner + a + b', in the order the run config gives."""
    if isinstance(noise, str) and noise.startswith("["):
        try:
            noise = json.loads(noise)
        except ValueError:
            pass
    if isinstance(noise, (list, tuple)):
        noise = " + ".join(str(n) for n in noise if str(n) != "none")
    noise = "" if noise is None or (isinstance(noise, float) and math.isnan(noise)) else str(noise)
    return str(learner) if noise in ("", "none") else f"{learner} + {noise}"


def status_of(run_dir) -> tuple[str, str]:
    """(status, reason) of a run folder; see the module doc."""
    run_dir = Path(run_dir)
    summary = run_dir / "summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        d = s.get("diverged")
        if d:
            return "diverged", f"non-finite parameters at step {d['step']} (seed {d['seed']})"
        return "done", ""
    error = run_dir / ERROR_FILE
    if error.exists():
        lines = error.read_text().strip().splitlines()
        return "failed", lines[0] if lines else "failed without a message"
    if (run_dir / "checkpoint.npz").exists():
        return "partial", "stopped before the end; --resume continues it from its checkpoint"
    return "pending", ""


def run_row(point: Point, run_dir) -> dict:
    """The table row of one sweep point (module doc)."""
    run_dir = Path(run_dir)
    row = {"point": point.index, "point_id": point.id, "run_dir": str(run_dir)}
    for section, table in point.config.to_dict().items():
        for key, value in table.items():
            if isinstance(value, dict):   # a composed model's component options: [noise.node-dropout] p
                row.update({f"{section}.{key}.{k}": _scalar(v) for k, v in value.items()})
            else:
                row[f"{section}.{key}"] = _scalar(value)
    status, reason = status_of(run_dir)
    row["status"], row["reason"] = status, reason
    summary = json.loads((run_dir / "summary.json").read_text()) if status in FINISHED else {}
    row["steps_done"] = summary.get("steps_done", math.nan)
    row["wall_seconds"] = summary.get("wall_seconds", math.nan)
    row["diverged_step"] = (summary.get("diverged") or {}).get("step", math.nan)
    row["notes"] = " | ".join(summary.get("notes") or [])   # what `flatland run` printed (e.g. a figure not drawn)
    for name, prefix in (("initial_logged", "initial"), ("final", "final")):
        for metric, value in (summary.get(name) or {}).items():
            row[f"{prefix}.{metric}"] = _scalar(value)
    skip = {"steps_done", "wall_seconds", "diverged", "config", "final", "initial_logged", "notes"}
    for name, report in summary.items():
        if name in skip or not isinstance(report, dict):
            continue
        for key, value in report.items():
            if value is None or isinstance(value, (bool, int, float, str)):
                row[f"{name}.{key}"] = _scalar(value)
    return row


def _column(values: list):
    """One table column with a type pyarrow can store: numbers, nullable booleans, or text."""
    import pandas as pd

    present = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if present and all(isinstance(v, bool) for v in present):
        return pd.array([None if isinstance(v, float) else v for v in values], dtype="boolean")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pd.array(values, dtype="float64" if any(isinstance(v, float) for v in values) else "int64")
    return pd.array([None if isinstance(v, float) and math.isnan(v) else str(v) for v in values], dtype="string")


def write_table(rows: list, path) -> None:
    """The rows as one Parquet file, ordered by point, written atomically (module doc)."""
    import io

    import pandas as pd

    from .checkpoint import atomic_write_bytes

    rows = sorted(rows, key=lambda r: r["point"])
    columns = list(dict.fromkeys(k for r in rows for k in r))
    frame = pd.DataFrame({c: _column([r.get(c, math.nan) for r in rows]) for c in columns})
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def read_table(path):
    """A sweep's results table as a pandas DataFrame; a damaged file, or one without the ``status`` column,
    is a one-line UserError (they were internal errors: ArrowInvalid, KeyError)."""
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:   # pyarrow's ArrowInvalid is a ValueError
        raise UserError(f"{path} cannot be read as a sweep table ({type(exc).__name__}: {exc}); it is damaged or "
                        "was not written by `flatland sweep`") from None
    if "status" not in frame.columns:
        raise UserError(f"{path} is not a `flatland sweep` table: it has no status column "
                        f"(columns: {', '.join(map(str, frame.columns[:8]))})")
    return frame
