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

``match(frame)`` removes the easy cues before anything is learned: coarsened
exact matching of runs on the loss plateau and the overall drift speed (both
log-scaled and cut at pooled quantiles into ``bins`` × ``bins`` cells; in each
cell every mechanism keeps as many runs as the rarest one has there, chosen at
random), so within the kept set neither quantity tells the mechanisms apart.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import zlib

import numpy as np

from ..errors import UserError
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


def mechanism_of(learner: str, noise) -> str:
    """The label of a run: 'learner' or 'learner + noise' (noise 'none' and missing noise left out)."""
    noise = "" if noise is None or (isinstance(noise, float) and np.isnan(noise)) else str(noise)
    return str(learner) if noise in ("", "none") else f"{learner} + {noise}"


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


def build(sweep_dir, plan: Plan = Plan(), log=None):
    """A DataFrame, one row per recording: run, task, mechanism, recording settings, f.<feature>, c.<feature>."""
    import pandas as pd

    table, done = _runs(sweep_dir)
    rows, skipped = [], []
    for _, r in done.iterrows():
        run_dir = os.path.join(sweep_dir, "runs", os.path.basename(str(r["run_dir"])))
        try:
            resp = load_log(run_dir)
        except UserError as exc:
            skipped.append(f"{os.path.basename(run_dir)}: {exc}")
            continue
        n_units = resp.values.shape[-1]
        base = {"run": os.path.basename(run_dir), "task": str(r.get("task.name")),
                "mechanism": mechanism_of(r.get("learner.name"), r.get("noise.name")),
                "loss_plateau": float(r.get("final.loss_norm", r.get("final.loss", np.nan)))}
        for (units, sessions, obs), d, s in itertools.product(
                itertools.product(plan.units, plan.sessions, plan.obs_noise), range(plan.draws), range(resp.seeds)):
            u = None if units is None or units >= n_units else int(units)
            spec = RecordingSpec(sessions=int(sessions), units=u, obs_noise=float(obs), start=plan.start,
                                 seed=zlib.crc32(f"{base['run']}/{s}/{d}".encode()))
            rec = make_recording(resp, spec, seed_index=s)
            sig = signature(rec["responses"], rec.get("resample"))
            rows.append(base | {"units": u or n_units, "sessions": int(sessions), "obs_noise": float(obs),
                                "draw": d, "seed_index": s}
                        | {f"f.{k}": sig.values[k] for k in FEATURES} | {f"c.{k}": sig.controls[k] for k in FEATURES})
        if log:
            log(f"{base['run']}: {base['mechanism']} on {base['task']}")
    if not rows:
        raise UserError(f"{sweep_dir}: none of its {len(done)} finished runs logged responses "
                        "(put \"responses\" in [run] metrics)" + (f"; first: {skipped[0]}" if skipped else ""))
    return pd.DataFrame(rows)


def match(frame, bins: int = 3, seed: int = 0):
    """(kept frame, summary dict): coarsened exact matching of runs on loss plateau and drift speed."""
    runs = frame.groupby("run").agg(mechanism=("mechanism", "first"), loss=("loss_plateau", "first"),
                                    speed=("f.drift_speed", "median"))
    x = np.log10(np.maximum(runs["loss"].to_numpy(float), 1e-12))
    y = runs["speed"].to_numpy(float)
    cells = []
    for v in (x, y):
        edges = np.nanquantile(v, np.linspace(0, 1, bins + 1)[1:-1]) if np.any(np.isfinite(v)) else []
        cells.append(np.searchsorted(edges, v))
    runs = runs.assign(cell=[f"{a}/{b}" for a, b in zip(*cells)])
    rng = np.random.default_rng(seed)
    mechs = sorted(runs["mechanism"].unique())
    keep = []
    for _, g in runs.groupby("cell"):
        counts = g["mechanism"].value_counts()
        n = min(counts.get(m, 0) for m in mechs)
        for m in mechs:
            if n:
                keep += list(rng.choice(g.index[g["mechanism"] == m], n, replace=False))
    summary = {"runs": len(runs), "kept": len(keep), "bins": bins,
               "per_mechanism": {m: int((runs.loc[keep, "mechanism"] == m).sum()) for m in mechs}}
    return frame[frame["run"].isin(keep)].reset_index(drop=True), summary
