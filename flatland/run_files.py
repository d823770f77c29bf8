"""Files of a ``flatland run`` folder: append-only CSVs, reading them back, versions.json.

What: :class:`Csv` appends rows (fsync'd) and reports its byte size, which the
checkpoint records so a resume truncates rows written after it; ``read_csv``
reads a run's CSV into ``{column: array}``; ``write_versions`` records the
interpreter, the numerical packages and every loaded plugin distribution.

Why the number format: ``repr`` of a float64 round-trips exactly, so two runs
with the same bits write the same bytes (the resume tests compare bytes).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import checkpoint as ckpt


class Csv:
    """Append-only CSV whose size is recorded in checkpoints (truncated back on resume)."""

    def __init__(self, path: Path, header):
        self.path = Path(path)
        self.header = list(header)
        if not self.path.exists():
            self.path.write_text(",".join(self.header) + "\n")

    def append(self, rows) -> None:
        with open(self.path, "a") as f:
            for row in rows:
                f.write(",".join(fmt(v) for v in row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def size(self) -> int:
        return self.path.stat().st_size

    def truncate(self, size: int) -> None:
        with open(self.path, "r+b") as f:
            f.truncate(size)


def fmt(v) -> str:
    """One CSV cell: ints as ints, strings as they are, floats by ``repr`` (``nan`` for NaN)."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, str):
        return v
    v = float(v)
    return "nan" if v != v else repr(v)


def read_csv(path) -> dict:
    """Read one of the run's CSVs into {column: numpy array} (pandas reads them too)."""
    with open(path) as f:
        header = f.readline().strip().split(",")
    if not header or header == [""]:
        return {}
    data = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding=None, deletechars="")
    data = np.atleast_1d(data)
    return {h: np.asarray(data[h]) for h in header}


#: what sets a run's round-off: a resume under other values continues the same law, not the same bits
ROUND_OFF_KEYS = ("flatland", "jax", "jaxlib", "numpy", "machine", "jax_devices", "jax_x64", "xla_flags")


def write_versions(path, plugins, resumed: bool = False) -> list:
    """versions.json: Python, platform, jax/jaxlib/numpy/sympy/flatland/…, and each plugin's distribution.

    On a resume whose versions differ from the file's in what sets round-off (:data:`ROUND_OFF_KEYS`), the
    earlier record is kept under ``"earlier"`` and the differences are returned as "key: old → new" lines."""
    from .results import versions

    info = versions()
    info["plugins"] = [{"name": p.name, "version": p.version, "origin": p.origin} for p in plugins]
    changed = []
    if resumed:
        try:
            old = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict):
            changed = [f"{k}: {old.get(k)!r} → {info.get(k)!r}" for k in ROUND_OFF_KEYS if old.get(k) != info.get(k)]
            if changed:
                info["earlier"] = old            # with its own earlier records inside
            elif "earlier" in old:
                info["earlier"] = old["earlier"]
    ckpt.atomic_write_text(path, json.dumps(info, indent=2) + "\n")
    return changed
