"""Recordings from runs: a few sessions of a subset of units, the way an experimenter sees a network.

What: ``load_log(run_dir)`` reads the ``responses`` metric that ``flatland
run`` logged into ``records/*.npz`` (seeds × logs × stimuli × units);
``make_recording(log, …)`` picks ``sessions`` logged steps evenly spaced over
a window of the run (the logged step nearest to each of the evenly spaced times,
so spacings may differ by one log period), a random subset of ``units``, groups the stimuli into
consecutive blocks (a block is a stimulus class, e.g. a stretch of a track;
its stimuli are the class's repeats) and optionally adds observation noise.
The result has the layout ``flatland geometry`` reads: ``responses``
(sessions, groups, repeats, units) and, with observation noise, an
independent ``resample`` of the same recording (the Δt = 0 control).

Observation noise (a stand-in for calcium imaging, stated, not fitted): each
observed value is r + σ_obs · s_u · ξ with ξ ~ N(0, 1) drawn independently
per value and per pass, where s_u is unit u's response s.d. over the whole
recording, floored at the median s.d. of the recorded units that respond at all, so
a silent unit is as noisy as a typical one.
"""
from __future__ import annotations

import dataclasses
import glob
import os

import numpy as np

from ..errors import UserError

METRIC = "responses"


@dataclasses.dataclass
class ResponseLog:
    """The logged responses of one run: ``steps`` (L,), ``values`` (seeds, L, stimuli, units)."""

    steps: np.ndarray
    values: np.ndarray
    run_dir: str = ""

    @property
    def seeds(self) -> int:
        return self.values.shape[0]


@dataclasses.dataclass(frozen=True)
class RecordingSpec:
    """How to record: sessions, units (None = all), groups (None = automatic), noise, window, seed."""

    sessions: int = 5
    units: int | None = None
    groups: int | None = None
    obs_noise: float = 0.0
    start: float = 0.0          # window start as a fraction of the logged run (0 = first logged step)
    seed: int = 0

    def __post_init__(self):
        if not (isinstance(self.sessions, int) and self.sessions >= 2):
            raise UserError(f"sessions must be an integer ≥ 2, got {self.sessions!r}")
        if self.units is not None and not (isinstance(self.units, int) and self.units >= 2):
            raise UserError(f"units must be an integer ≥ 2 (or all), got {self.units!r}")
        if self.groups is not None and not (isinstance(self.groups, int) and self.groups >= 1):
            raise UserError(f"groups must be an integer ≥ 1, got {self.groups!r}")
        if not (np.isfinite(self.obs_noise) and 0 <= self.obs_noise <= 100):
            raise UserError(f"observation noise must be in [0, 100] (a multiple of each unit's s.d.), "
                            f"got {self.obs_noise!r}")
        if not (0 <= self.start < 1):
            raise UserError(f"window start must be a fraction in [0, 1), got {self.start!r}")


def load_log(run_dir: str) -> ResponseLog:
    """The ``responses`` records of a finished or running ``flatland run`` folder; UserError if absent."""
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: no such folder (give the --out folder of a `flatland run`)")
    files = sorted(glob.glob(os.path.join(run_dir, "records", "step_*.npz")))
    steps, values = [], []
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                if METRIC not in z.files:
                    continue
                steps.append(np.asarray(z["step"], np.int64))
                values.append(np.asarray(z[METRIC], np.float32))
        except (ValueError, OSError, EOFError) as exc:
            raise UserError(f"{f} is not a readable records file ({exc})") from None
    if not steps:
        raise UserError(f"{run_dir} has no logged responses: {_why_no_responses(run_dir)}")
    steps = np.concatenate(steps)
    _refuse_gaps(run_dir, steps)
    return ResponseLog(steps, np.concatenate(values, axis=1), run_dir)


def _run_table(run_dir: str) -> dict | None:
    """The ``[run]`` table of the folder's config.toml ({} without one); None when there is no readable file."""
    import tomllib

    try:
        with open(os.path.join(run_dir, "config.toml"), "rb") as f:
            run = tomllib.load(f).get("run", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return run if isinstance(run, dict) else {}


def _refuse_gaps(run_dir: str, steps: np.ndarray) -> None:
    """A run logs responses at every multiple of its ``log_every``: a records file that is missing (removed,
    or copied only in part) leaves a gap, and sessions chosen across it would not be evenly spaced."""
    try:
        every = int(_run_table(run_dir)["log_every"])
    except (TypeError, KeyError, ValueError):     # no readable config.toml: the first logged step is one period
        every = int(steps.min())
    if every <= 0:
        return
    missing = np.setdiff1d(np.arange(every, int(steps.max()) + 1, every), steps)
    if missing.size:
        raise UserError(f"{run_dir}/records lacks the responses of {missing.size} logged step(s) (first: step "
                        f"{int(missing[0]):,}; the run logs every {every:,} steps, up to step {int(steps.max()):,}): "
                        "a records/step_*.npz file is missing, so sessions would not be where they say")


def _why_no_responses(run_dir: str) -> str:
    """Why a run folder holds no responses: not asked for, diverged or stopped before the first log."""
    import json

    run = _run_table(run_dir)
    if run is None:
        return "it is not a flatland run folder (no readable config.toml)"
    if "responses" not in run.get("metrics", []):
        return ("run it with \"responses\" in [run] metrics (a task whose Loss declares extras['responses'], "
                "e.g. the relu tasks)")
    first = f"its first log is at step {run.get('log_every', 100):,}"
    try:
        with open(os.path.join(run_dir, "summary.json")) as f:
            diverged = json.load(f).get("diverged")
    except (OSError, ValueError):
        return f"it stopped before logging them ({first}); continue it with `flatland run CONFIG --out {run_dir} --resume`"
    if diverged:
        return f"it diverged at step {diverged['step']:,}, before logging them ({first})"
    return f"it logged none ({first})"


def session_steps(log: ResponseLog, sessions: int, start: float = 0.0) -> np.ndarray:
    """Indices into ``log.steps`` of ``sessions`` logged steps evenly spaced over the window."""
    L = log.steps.size
    first = min(int(np.floor(start * L)), L - 1)
    if L - first < sessions:
        raise UserError(f"{log.run_dir or 'the run'} logged responses at {L - first} step(s) in the window, "
                        f"fewer than the {sessions} sessions asked for (log more often: smaller log_every)")
    return np.unique(np.round(np.linspace(first, L - 1, sessions)).astype(int))


def auto_groups(stimuli: int) -> int:
    """Stimulus classes when none are given: blocks of at least 6 stimuli, at most 10 classes."""
    return max(1, min(10, stimuli // 6))


def make_recording(log: ResponseLog, spec: RecordingSpec = RecordingSpec(), seed_index: int = 0) -> dict:
    """``{"responses", "resample"?, "steps", "units"}`` of one seed of ``log`` (module doc)."""
    if not 0 <= seed_index < log.seeds:
        raise UserError(f"seed index {seed_index} is outside the run's {log.seeds} seed(s)")
    rng = np.random.default_rng(spec.seed)
    idx = session_steps(log, spec.sessions, spec.start)
    X = np.asarray(log.values[seed_index, idx], np.float64)         # (S, stimuli, units)
    n_units = X.shape[2]
    if spec.units is not None and spec.units > n_units:
        raise UserError(f"asked for {spec.units} units; the run has {n_units}")
    units = np.sort(rng.choice(n_units, spec.units, replace=False)) if spec.units else np.arange(n_units)
    X = X[:, :, units]
    G = spec.groups or auto_groups(X.shape[1])
    K = X.shape[1] // G
    if K < 4:
        raise UserError(f"{X.shape[1]} stimuli in {G} groups leave {K} repeat(s) per group; "
                        "a recording needs ≥ 4 (use fewer groups)")
    R = X[:, : G * K].reshape(X.shape[0], G, K, -1)
    out = {"steps": log.steps[idx], "units": units}
    if spec.obs_noise > 0:
        s = R.reshape(-1, R.shape[-1]).std(axis=0)
        floor = np.median(s[s > 0]) if np.any(s > 0) else 1.0
        s = np.maximum(s, floor) * spec.obs_noise
        out["responses"] = R + s * rng.standard_normal(R.shape)
        out["resample"] = R + s * rng.standard_normal(R.shape)
    else:
        out["responses"] = R
    return out
