"""Results folders: one per ``flatland check`` run, shaped for later sweeps.

A folder holds ``settings.json`` (the resolved settings: command line, seeds,
the checks and their run sizes), ``versions.json`` (Python, platform, package
versions, JAX devices, the loaded plugins and their versions), ``results.json`` (one object per verdict row),
``table.txt`` (what the terminal showed) and ``figures/*.png`` (matplotlib,
Agg backend). The default place is ``./flatland-results/<timestamp>/``.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import json
import math
import os
import platform
import sys
import threading
from pathlib import Path

import numpy as np

_PLOT_LOCK = threading.Lock()  # matplotlib is not thread-safe; checks may run in threads
PACKAGES = ("flatland", "jax", "jaxlib", "numpy", "sympy", "optax", "pluggy", "matplotlib", "autograd", "hypothesis")


def default_dir(base: str | Path = "flatland-results") -> Path:
    """A new folder ``base/<date-time>[-i]``, created here: exclusive, so simultaneous starts never share one."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    Path(base).mkdir(parents=True, exist_ok=True)
    for i in range(10_000):
        path = Path(base) / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free results folder name under {base} for {stamp}")


def write_captions(fig_dir, entries, by: str = "") -> Path | None:
    """``fig_dir/README.md``: one line per figure, what it shows (the one caption file of every command).

    ``entries`` are ``(path or file name, caption)`` pairs, or bare paths (then "no caption given");
    nothing is written when there are none. Every command that writes ``figures/*.png`` (check, run,
    report, infer, geometry, reproduce) calls this, so a reader finds the same file everywhere.
    """
    items = [(e, "") if isinstance(e, (str, Path)) else (e[0], e[1]) for e in entries]
    if not items:
        return None
    lines = ["# Figures", "", "What each PNG of this folder shows" + (f" ({by})." if by else "."), ""]
    lines += [f"* `{Path(f).name}` — {c or 'no caption given'}" for f, c in items]
    path = Path(fig_dir) / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


CLAIM = ".flatland-results"   # created with O_EXCL: of two checks started on one empty --out, one wins


def _claim(path: Path) -> Path:
    """Create ``path`` or accept it empty, and claim it atomically; a folder holding anything is refused."""
    import os

    from .errors import UserError

    refused = (f"{path} already holds results; give a new or empty --out (nothing there is overwritten but the "
               "record of a check that stopped with an error)")
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a folder; give a new or empty folder as --out")
    path.mkdir(parents=True, exist_ok=True)
    _clear_error_record(path)
    try:
        os.close(os.open(path / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise UserError(refused) from None
    if any(p.name != CLAIM for p in path.iterdir()):
        (path / CLAIM).unlink()
        raise UserError(refused)
    return path


#: what a check that stopped with an error leaves (ResultsFolder's files, no results, no figure)
ERROR_RECORD = {CLAIM, "results.json", "table.txt", "settings.json", "versions.json", "figures"}


def _clear_error_record(path: Path) -> None:
    """Remove what a check that stopped with a user error left in ``path`` (results.json holding only its
    error, no figures), so the corrected command can use the same --out; anything else is left alone."""
    try:
        names = {p.name for p in path.iterdir()}
        record = json.loads((path / "results.json").read_text())
        figures = path / "figures"
        if not (names <= ERROR_RECORD and set(record) == {"error", "command"}
                and (not figures.exists() or not any(figures.iterdir()))):
            return
    except (OSError, ValueError, AttributeError, TypeError):
        return
    for name in names - {"figures"}:
        (path / name).unlink(missing_ok=True)
    if "figures" in names:
        (path / "figures").rmdir()


def versions() -> dict:
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine()}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    try:
        import jax

        out["jax_devices"] = [str(d) for d in jax.devices()]
        out["jax_x64"] = bool(jax.config.jax_enable_x64)
        out["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    except Exception as exc:  # pragma: no cover - reported, not fatal
        out["jax_devices"] = f"unavailable: {exc}"
    return out


def jsonable(obj):
    """Arrays, numpy scalars and non-finite floats as plain JSON (NaN/inf → null)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


class ResultsFolder:
    """A results folder being written; checks may call ``figure``/``landscape``/``bars`` on it."""

    def __init__(self, path: str | Path | None = None):
        try:
            self.path = _claim(Path(path)) if path is not None else default_dir()
            (self.path / "figures").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from .errors import UserError

            raise UserError(f"cannot create the results folder {path}: {exc.strerror or exc}") from None
        self.figures: list[str] = []
        self.figure_errors: list[str] = []
        self.captions: dict[str, str] = {}

    def write_json(self, name: str, obj) -> Path:
        p = self.path / name
        p.write_text(json.dumps(jsonable(obj), indent=2, ensure_ascii=False) + "\n")
        return p

    def write_text(self, name: str, text: str) -> Path:
        p = self.path / name
        p.write_text(text)
        return p

    def start(self, settings: dict, plugins=()) -> None:
        """settings.json, and versions.json with the loaded ``plugins`` (PluginInfo), as a run's has."""
        from .run_files import write_versions

        self.write_json("settings.json", settings)
        write_versions(self.path / "versions.json", plugins)

    def finish(self, rows: list, table: str, extra: dict | None = None) -> None:
        self.write_json("results.json", {"results": [r.to_json() for r in rows], **(extra or {}),
                                         "figures": self.figures, "figure_errors": self.figure_errors})
        self.write_text("table.txt", table + "\n")
        if self.figures:
            write_captions(self.path / "figures", [(f, self.captions.get(f, "")) for f in self.figures],
                           "written by the check that drew it")

    def figure(self, name: str, draw, caption: str = "") -> None:
        """Draw one PNG ``figures/NAME.png`` with ``draw(path)``; a plotting failure is recorded, never fatal.

        For checks' own figures (plugins included): matplotlib is set to its file-only Agg backend
        first, and figures are drawn one at a time, so ``draw`` may use ``matplotlib.pyplot``.
        ``caption`` (what is drawn, what the lines and bands mean) goes into ``figures/README.md``.
        """
        from .check_figures import _plt

        path = self.path / "figures" / f"{_safe(name)}.png"
        try:
            with _PLOT_LOCK:
                _plt()
                draw(path)
            rel = str(path.relative_to(self.path))
            self.figures.append(rel)
            if caption:
                self.captions[rel] = caption
        except Exception as exc:
            self.figure_errors.append(f"{name}: {type(exc).__name__}: {exc}")

    def _figure(self, name: str, draw, caption: str, *args) -> None:
        """One of the engine's figures (a function of :mod:`flatland.check_figures`) through :meth:`figure`."""
        from . import check_figures as figures

        self.figure(name, lambda path: getattr(figures, draw)(path, *args), caption)

    def landscape(self, tag: str, loss, measured) -> None:
        self._figure(f"landscape-{tag}", "landscape",
                     f"{tag}: log10 of the loss over the first two coordinates (other coordinates at the start "
                     "point), the sampled chains' trajectories (white, last position orange), the start on Γ (red +) "
                     "and the predicted finite-η drift along Γ (red arrows: direction exact, length ∝ |v| clipped "
                     "to 0.3–2× the median).", loss, measured)

    def bars(self, rows: list, name: str = "measured-vs-predicted") -> None:
        self._figure(name, "bars",
                     "every verdict row of the run: measured/predicted with 1.96 s.e. where the row has a ratio "
                     "(the vertical line is agreement), otherwise the row's threshold rule and its verdict written "
                     "out; green passed, red failed.", rows)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
