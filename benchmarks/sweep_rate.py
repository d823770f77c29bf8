"""Runs per CPU-hour of a sweep protocol: flatland's compiled runs beside the paper-style PyTorch loop.

What it measures, on a sample of the protocol's points (default: the first of
each mechanism in ``examples/sweeps/elife-scaled.toml``), each on one thread:

* flatland: steps/s of the run loop once compiled (a second run of the same
  structure, which reuses the compiled chunk as a sweep worker does), the
  first-run overhead (assembly + compilation) and the per-run Hessian cost
  (the two full spectra the protocol takes, from the run's hessian.csv);
* PyTorch: steps/s of the per-step loop the paper's code uses (float64, one
  thread, ``torch.set_num_threads(1)``), for the GD points — skipped with a
  message when torch is not importable (it is not a flatland dependency; pass
  ``--torch-path DIR`` for a throwaway ``pip install --target DIR torch==2.13.0``).

From these and the protocol's mean step count it prints runs per CPU-hour:
3600 / (mean steps / rate + per-run overhead). It also measures whether
batching would pay: chain-steps/s of ``--batch`` seeds in one ``jit(vmap)``
(``[run] ensemble = "vmap"``) against the same seeds one after another
(``"loop"``), once compiled. Usage::

    .venv/bin/python benchmarks/sweep_rate.py [--sweep FILE] [--steps 20000] [--json out.json] [--torch-path DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _with(cfg, hessian=None, **run):
    """``cfg`` with [run] keys replaced (and [relu] hessian, when given)."""
    from flatland.config import from_dict

    d = cfg.to_dict()
    d["run"].update(run)
    if hessian is not None:
        d["relu"] = dict(d.get("relu", {}), hessian=hessian)
    return from_dict(d)


def flatland_point(point, steps: int, work: Path) -> dict:
    """Loop rate once compiled, first-run overhead, Hessian seconds per run (module doc)."""
    from flatland import runner

    cfg = _with(point.config, steps=steps)
    t0 = time.perf_counter()
    first = runner.run(cfg, work / f"{point.index}-a", progress=False, figures=False)
    first_total = time.perf_counter() - t0
    hess = runner.read_csv(work / f"{point.index}-a" / "hessian.csv")
    hess_s = float(np.sum(hess["seconds"])) if hess and np.size(hess["seconds"]) else 0.0
    again = runner.run(_with(cfg, seed=cfg.run["seed"] + 1), work / f"{point.index}-b", progress=False,
                       figures=False)
    h = runner.read_csv(work / f"{point.index}-b" / "hessian.csv")
    # the run's wall time starts after its step-0 snapshot, so it holds only the last Hessian
    loop = again["wall_seconds"] - float(np.sum(h["seconds"][h["step"] == h["step"].max()]))
    return {"steps_per_s": steps / loop, "overhead_s": first_total - loop - hess_s, "hessian_s": hess_s,
            "n_params": first.get("hessian", {}).get("n_params")}


def batch_rates(point, seeds: int, steps: int, work: Path) -> dict:
    """Chain-steps/s of ``seeds`` chains vmapped against looped, compiled (the second run of each)."""
    from flatland import runner

    out = {}
    for mode in ("vmap", "loop"):
        cfg = _with(point.config, hessian="off", steps=steps, seeds=seeds, ensemble=mode)
        runner.run(cfg, work / f"batch-{mode}-a", progress=False, figures=False)
        again = runner.run(_with(cfg, seed=cfg.run["seed"] + 1), work / f"batch-{mode}-b", progress=False,
                           figures=False)
        out[mode] = seeds * steps / again["wall_seconds"]
    out["vmap_over_loop"] = out["vmap"] / out["loop"]
    return out


def torch_point(point, steps: int) -> dict:
    from relu_speed import torch_gd_rate

    from flatland.run_build import build_setup

    c = point.config
    if c.learner["name"] != "gd" or c.noise["name"] != "gradient":
        return {"skipped": "the PyTorch loop is written for GD + update noise"}
    relu = build_setup(c).loss.extras["relu"]
    return torch_gd_rate(relu["X"], relu["Y"], c.task["n_hid"], c.learner["lr"], c.noise["sigma"], steps,
                         log_every=c.run["log_every"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", default=str(ROOT / "examples" / "sweeps" / "elife-scaled.toml"))
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=8, help="seeds for the vmap-vs-loop measurement (0: skip)")
    ap.add_argument("--json")
    ap.add_argument("--torch-path", help="a folder with a throwaway torch install, appended to sys.path")
    args = ap.parse_args()
    if args.torch_path:
        sys.path.append(args.torch_path)
    from flatland.sweep_spec import load

    points = load(args.sweep)
    mean_steps = float(np.mean([p.config.run["steps"] for p in points]))
    sample, seen = [], set()
    for p in points:
        mech = (p.config.learner["name"], p.config.noise["name"])
        if mech not in seen:
            seen.add(mech)
            sample.append(p)
    out = {"sweep": args.sweep, "points": len(points), "mean_steps": mean_steps, "bench_steps": args.steps,
           "cores": os.cpu_count(), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for p in sample:
            f = flatland_point(p, args.steps, Path(tmp))
            t = torch_point(p, args.steps)
            mech = f"{p.config.learner['name']} + {p.config.noise['name']}"
            row = {"point": p.index, "mechanism": mech, "flatland": f, "torch": t}
            per_run = mean_steps / f["steps_per_s"] + f["overhead_s"] + f["hessian_s"]
            row["flatland_runs_per_cpu_hour"] = 3600 / per_run
            if "steps_per_s" in t:
                row["torch_runs_per_cpu_hour"] = 3600 / (mean_steps / t["steps_per_s"] + f["hessian_s"])
                row["speedup_loop"] = f["steps_per_s"] / t["steps_per_s"]
            out["rows"].append(row)
            print(f"point {p.index} ({row['mechanism']}, P={f['n_params']}): flatland {f['steps_per_s']:,.0f} steps/s, "
                  f"overhead {f['overhead_s']:.1f} s, Hessian {f['hessian_s']:.1f} s → "
                  f"{row['flatland_runs_per_cpu_hour']:.1f} runs/CPU-h"
                  + (f"; torch {t['steps_per_s']:,.0f} steps/s → {row['torch_runs_per_cpu_hour']:.1f} runs/CPU-h "
                     f"(loop {row['speedup_loop']:.2f}×)" if "steps_per_s" in t else f"; torch: {t.get('skipped')}"),
                  flush=True)
        if args.batch:
            out["batch"] = batch_rates(sample[0], args.batch, args.steps // 4, Path(tmp))
            b = out["batch"]
            print(f"point {sample[0].index}, {args.batch} seeds: vmap {b['vmap']:,.0f} chain-steps/s, loop "
                  f"{b['loop']:,.0f} → vmap/loop {b['vmap_over_loop']:.2f}", flush=True)
    rates = [r["flatland_runs_per_cpu_hour"] for r in out["rows"]]
    out["flatland_runs_per_cpu_hour_mean"] = float(np.mean(rates))
    print(f"protocol mean {mean_steps:,.0f} steps per run: flatland {np.mean(rates):.1f} runs per CPU-hour "
          f"(sample mean over {len(rates)} mechanisms)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
