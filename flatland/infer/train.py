"""Training end to end (sweep → matched dataset → evaluation → model) and inference on one recording.

``train(sweep_dir, out, plan)`` builds the labelled recordings of a sweep,
matches runs on the easy cues (unless ``matched=False``), evaluates with
grouped cross-validation, fits the final model on all kept recordings, and
writes ``dataset.parquet``, ``model.json``, ``report.md`` and figures into
``out``. ``infer_file(path, model)`` reads a recording (the ``flatland
geometry`` layout), computes its signature and returns the posterior over the
model's mechanisms with the features that drove it. Without a model folder it
uses ``DEFAULT_MODEL``, the model trained on the shipped benchmark sweeps.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from .classifier import fit, load
from .dataset import Plan, build, match
from .evaluate import evaluate
from .features import FEATURES, signature
from .report import write_report

DEFAULT_MODEL = Path(__file__).with_name("default_model.json")


def train(sweep_dir, out, plan: Plan = Plan(), matched: bool = True, bins: int = 0, folds: int = 5,
          ablation: bool = True, log=None, progress=None, match_on=("loss", "speed"),
          match_per_task: bool = False) -> dict:
    """Train and evaluate on ``sweep_dir`` (one sweep folder or a list, pooled); write everything into ``out``;
    return paths and headline numbers. ``match_on``: the cues runs are matched on when ``matched``;
    ``match_per_task``: match each task on its own (see :func:`match`)."""
    import io

    from ..checkpoint import atomic_write_bytes

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame = build(sweep_dir, plan, log=log, progress=progress)
    summary = None
    if matched:
        frame, summary = match(frame, bins=bins, on=match_on, per_task=match_per_task)
        if frame["mechanism"].nunique() < 2 or frame["run"].nunique() < 4:
            gone = summary.get("left_out") or []
            raise UserError(f"matching on {' and '.join(summary['cues'])} left {frame['run'].nunique()} run(s) of "
                            f"{frame['mechanism'].nunique()} mechanism(s)"
                            + (f" ({', '.join(gone)} left out{' in some task' if match_per_task else ''}: "
                               "no region shared with the others)" if gone else "")
                            + ": too few to train (more runs, wider noise ranges, --bins 0, fewer cues with --match, "
                            "or --no-match)")
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(out / "dataset.parquet", buf.getvalue())
    ev = evaluate(frame, FEATURES, folds=folds, ablation=ablation)
    model = fit(frame[[f"f.{n}" for n in FEATURES]].to_numpy(float), frame["mechanism"].to_numpy(), FEATURES, meta={
        "source": _source(sweep_dir), "tasks": sorted(frame["task"].unique()), "runs": int(frame["run"].nunique()),
        "recordings": len(frame), "units": sorted(map(int, frame["units"].unique())),
        "sessions": sorted(map(int, frame["sessions"].unique())), "obs_noise": sorted(frame["obs_noise"].unique()),
        "matched": summary, "cv_accuracy": list(ev.model), "baseline_accuracy": list(ev.baseline),
        "held_out_task_accuracy": list(ev.held_out_tasks.get("all held-out tasks", ((),))[0]) or None,
        "feature_ranges": feature_ranges(frame)})
    model.save(out)
    report = write_report(out, ev, summary, plan, _source(sweep_dir))
    return {"model": out / "model.json", "report": report, "evaluation": ev, "match": summary}


def _source(sweep_dir) -> str:
    return str(sweep_dir) if isinstance(sweep_dir, (str, os.PathLike)) else " + ".join(map(str, sweep_dir))


def feature_ranges(frame) -> dict:
    """{feature: [1st, 99th percentile]} of the training recordings: outside them the model extrapolates."""
    out = {}
    for n in FEATURES:
        v = frame[f"f.{n}"].to_numpy(float)
        v = v[np.isfinite(v)]
        if v.size:
            out[n] = [float(np.percentile(v, 1)), float(np.percentile(v, 99))]
    return out


def outside_training(model, sig) -> list:
    """(feature, value, lo, hi) for the recording's features outside the model's training range."""
    out = []
    for n, (lo, hi) in model.meta.get("feature_ranges", {}).items():
        v = sig.values.get(n, np.nan)
        if np.isfinite(v) and not lo <= v <= hi:
            out.append((n, float(v), lo, hi))
    return out


def infer_file(path, model_dir=None, key: str = "responses") -> dict:
    """Posterior over mechanisms for one recording file, with drivers and the signature (module doc)."""
    from ..geometry.io import load_responses

    model_path = Path(model_dir) if model_dir is not None else DEFAULT_MODEL
    if model_dir is None and not DEFAULT_MODEL.is_file():
        raise UserError("no default model is installed; train one with `flatland infer --train SWEEP_DIR` and pass --model")
    model = load(model_path)
    R, B, _ = load_responses(str(path), key)
    sig = signature(R, B)
    x = np.array([sig.values.get(n, np.nan) for n in model.features], float)
    post = model.posterior(x)[0]
    order = np.argsort(-post)
    return {"posterior": [(model.classes[i], float(post[i])) for i in order], "drivers": model.drivers(x),
            "signature": sig, "shape": R.shape, "resample": B is not None, "model": model,
            "outside": outside_training(model, sig)}
