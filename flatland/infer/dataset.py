"""Labelled recordings from a sweep: the training and test data of the mechanism classifier.

What: ``build(sweep_dir, plan)`` reads a ``flatland sweep`` table, takes its
finished runs that logged ``responses``, labels each with its mechanism
(``mechanism_of``: the learner, plus the noise model unless it is "none" —
names only, so a plugin's learner or noise is a mechanism like any other),
and cuts several recordings from each run (every combination of the plan's
unit counts, session counts and observation-noise levels, ``draws`` times with
different unit subsets and noise, for each of the run's seeds), with their
signatures and controls. A run's recordings share its ``run`` id, the unit the
evaluation keeps together.

``match(frame)`` removes the easy cues before anything is learned: it keeps
the runs on the common support of the loss plateau (log) and the overall drift
speed — inside every mechanism's range of both — so that no value of either
points to one mechanism alone; optionally (``bins``) it also balances the
mechanisms within cells of that region (coarsened exact matching). What cue
is left is measured: the best single-feature threshold rule is the baseline.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import zlib

import numpy as np

from ..errors import UserError
from ..sweep_table import mechanism_of
from .features import FEATURES, signature
from .recording import RecordingSpec, load_log, make_recording


@dataclasses.dataclass(frozen=True)
class Plan:
    """Which recordings to cut from every run (all combinations), and the window they come from."""

    units: tuple = (None,)
    sessions: tuple = (5,)
    obs_noise: tuple = (0.0,)
    draws: int = 1
    start: float = 0.2


def _runs(sweep_dir):
    from ..sweep_table import read_table

    path = os.path.join(sweep_dir, "table.parquet")
    if not os.path.isfile(path):
        raise UserError(f"{sweep_dir} has no table.parquet (is it a `flatland sweep` folder?)")
    t = read_table(path)
    done = t[t["status"] == "done"]
    if done.empty:
        raise UserError(f"{sweep_dir}: no finished runs in the table")
    return t, done


def build(sweep_dir, plan: Plan = Plan(), log=None, progress=None):
    """A DataFrame, one row per recording: run, task, mechanism, recording settings, f.<feature>, c.<feature>.

    ``sweep_dir`` is one sweep folder or a list of them (their runs are pooled; with more than one,
    run ids are prefixed by the folder's name so they stay distinct). ``log(message)`` gets a line per
    run; ``progress(done, total, note)`` the runs read so far."""
    import pandas as pd

    dirs = [sweep_dir] if isinstance(sweep_dir, (str, os.PathLike)) else list(sweep_dir)
    names = [os.path.basename(os.path.normpath(d)) for d in dirs]
    if len(set(names)) != len(names):
        raise UserError(f"sweep folders to pool must have distinct names, got {', '.join(map(str, dirs))}")
    if len(dirs) == 1:
        return _build_one(dirs[0], plan, log, progress, prefix="")
    frames = []
    for d, name in zip(dirs, names):
        frames.append(_build_one(d, plan, log, progress and (lambda i, n, note: progress(i, n, f"{name}: {note}")),
                                 prefix=f"{name}/"))
    return pd.concat(frames, ignore_index=True)


def _build_one(sweep_dir, plan, log, progress, prefix):
    import pandas as pd

    table, done = _runs(sweep_dir)
    rows, skipped = [], []
    for i, (_, r) in enumerate(done.iterrows()):
        run_dir = os.path.join(sweep_dir, "runs", os.path.basename(str(r["run_dir"])))
        try:
            resp = load_log(run_dir)
        except UserError as exc:
            skipped.append(f"{os.path.basename(run_dir)}: {exc}")
            continue
        n_units = resp.values.shape[-1]
        base = {"run": prefix + os.path.basename(run_dir), "task": str(r.get("task.name")),
                "mechanism": mechanism_of(r.get("learner.name"), r.get("noise.name")),
                "loss_plateau": float(r.get("final.loss_norm", r.get("final.loss", np.nan)))}
        for (units, sessions, obs), d, s in itertools.product(
                itertools.product(plan.units, plan.sessions, plan.obs_noise), range(plan.draws), range(resp.seeds)):
            u = None if units is None or units >= n_units else int(units)
            spec = RecordingSpec(sessions=int(sessions), units=u, obs_noise=float(obs), start=plan.start,
                                 seed=zlib.crc32(f"{os.path.basename(run_dir)}/{s}/{d}".encode()))
            rec = make_recording(resp, spec, seed_index=s)
            sig = signature(rec["responses"], rec.get("resample"))
            rows.append(base | {"units": u or n_units, "sessions": int(sessions), "obs_noise": float(obs),
                                "draw": d, "seed_index": s}
                        | {f"f.{k}": sig.values[k] for k in FEATURES} | {f"c.{k}": sig.controls[k] for k in FEATURES})
        if log:
            log(f"{base['run']}: {base['mechanism']} on {base['task']}")
        if progress:
            progress(i + 1, len(done), base["run"])
    if not rows:
        raise UserError(f"{sweep_dir}: none of its {len(done)} finished runs logged responses "
                        "(put \"responses\" in [run] metrics)" + (f"; first: {skipped[0]}" if skipped else ""))
    return pd.DataFrame(rows)


CUES = {"loss": "log10 loss plateau", "speed": "drift speed"}


def check_cues(on) -> tuple:
    """``on`` as a tuple of distinct cue names (keys of ``CUES``), or a UserError naming what is allowed."""
    on = tuple(on)
    if not on or any(q not in CUES for q in on) or len(set(on)) != len(on):
        raise UserError(f"matching cues must be one or both of {', '.join(CUES)}, got {', '.join(on) or 'none'}")
    return on


def _support(runs, on):
    """({quantity: (lo, hi)}, mask): the range of each quantity inside every mechanism's range, and who is in it."""
    ranges = runs.groupby("mechanism")[list(on)].agg(["min", "max"])
    inside = np.ones(len(runs), bool)
    support = {}
    for q in on:
        lo, hi = float(ranges[(q, "min")].max()), float(ranges[(q, "max")].min())
        support[q] = (lo, hi)
        inside &= runs[q].between(lo, hi).to_numpy()
    return support, inside


def match(frame, bins: int = 0, seed: int = 0, on=("loss", "speed"), per_task: bool = False):
    """(kept frame, summary dict): runs on the common support of loss plateau and drift speed (module doc).

    ``on`` names the cues matched on: ``"loss"`` (log10 loss plateau) and/or ``"speed"`` (the run's
    median drift speed). Step 1 keeps the runs whose cues all lie inside every mechanism's range
    (the region where all mechanisms have runs). When no such region exists, the mechanism whose absence
    keeps the most runs is left out (repeatedly; listed in ``left_out``): it cannot be matched on these
    cues. Step 2, with ``bins`` ≥ 1, cuts that region into
    ``bins`` equal cells per cue and keeps in each cell as many runs per mechanism as the rarest has.
    With ``per_task``, each task is matched on its own (its own region, mechanisms left out within it;
    summary ``per_task``), so that a held-out task keeps every mechanism that can be matched there.
    """
    import pandas as pd

    on = check_cues(on)
    if per_task and "task" not in frame:
        raise UserError("matching per task needs the recordings' task column")
    runs = frame.groupby("run").agg(mechanism=("mechanism", "first"), loss=("loss_plateau", "first"),
                                    speed=("f.drift_speed", "median"),
                                    **({"task": ("task", "first")} if per_task else {}))
    runs["loss"] = np.log10(np.maximum(runs["loss"].to_numpy(float), 1e-12))
    rng = np.random.default_rng(seed)
    summary = {"runs": int(frame["run"].nunique()), "bins": bins, "cues": [CUES[q] for q in on]}
    if per_task:
        kept, summary["per_task"] = [], {}
        for task, group in runs.groupby("task"):
            k, support, left_out = _match_runs(group, on, bins, rng)
            kept.append(k)
            summary["per_task"][str(task)] = {
                "support": {CUES[q]: support[q] for q in on}, "kept": len(k), "left_out": left_out,
                "per_mechanism": {m: int((k["mechanism"] == m).sum()) for m in sorted(group["mechanism"].unique())
                                  if m not in left_out}}
        runs = pd.concat(kept)
        summary["left_out"] = sorted({m for t in summary["per_task"].values() for m in t["left_out"]})
    else:
        runs, support, summary["left_out"] = _match_runs(runs, on, bins, rng)
        summary["support"] = {CUES[q]: support[q] for q in on}
    mechs = sorted(set(frame["mechanism"].unique()) - (set(summary["left_out"]) if not per_task else set()))
    summary |= {"kept": len(runs), "per_mechanism": {m: int((runs["mechanism"] == m).sum()) for m in mechs}}
    return frame[frame["run"].isin(runs.index)].reset_index(drop=True), summary


def _match_runs(runs, on, bins, rng):
    """(kept runs, {cue: (lo, hi)}, mechanisms left out): steps 1 and 2 of :func:`match` on one set of runs."""
    left_out = []
    while True:
        support, inside = _support(runs, on)
        if inside.any() or runs["mechanism"].nunique() <= 2:
            break
        # no region shared by all: leave out the mechanism whose absence keeps the most runs
        best = max(sorted(runs["mechanism"].unique()),
                   key=lambda m: int(_support(runs[runs["mechanism"] != m], on)[1].sum()))
        left_out.append(best)
        runs = runs[runs["mechanism"] != best]
    mechs = sorted(runs["mechanism"].unique())
    runs = runs[inside]
    if bins >= 1 and len(runs):
        cells = [np.clip(((runs[q] - lo) / max(hi - lo, 1e-12) * bins).astype(int), 0, bins - 1)
                 for q, (lo, hi) in support.items()]
        keep = []
        for _, g in runs.groupby([c.to_numpy() for c in cells]):
            n = min(int((g["mechanism"] == m).sum()) for m in mechs)
            for m in mechs:
                if n:
                    keep += list(rng.choice(g.index[g["mechanism"] == m], n, replace=False))
        runs = runs.loc[keep]
    return runs, support, left_out
