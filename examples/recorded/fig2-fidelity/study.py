"""Fig 2 fidelity study: the recorded Fig 2 run against the paper's place-cell counts.

What: ``python study.py run OUT`` runs each variant below as an ordinary
``flatland run`` into ``OUT/<variant>`` (resumable: a finished variant is
skipped, a killed one resumes from its checkpoint); ``python study.py report
OUT`` reads the runs' ``metrics.csv`` and writes ``results.csv`` and
``place_cells.png`` next to this file.

Why: the paper reports 199, 221, 170, 157 place cells of 500 at 0.1, 0.4, 0.7,
1.0 × 10⁶ steps; the recorded run counts 482, 448, 408, 377 units with
SI > 0.01 bits. The variants switch one thing at a time against the base
(flatland's defaults, task seed 0, run seed 0): the network seed, the public
code's wall texture mapping, its unwrapped heading change. Every variant logs
three place-cell counts side by side: SI > 0.01 bits (raw), the same with SI
also beating all 10 time shuffles, and active units; and the mean SI four ways:
raw and shuffle-corrected on the 150 training samples, and both on a probe walk
of 15,000 samples (the training walk continued; the relu plugin's si_probe).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

BASE = Path(__file__).resolve().parents[2] / "fig2.toml"
HERE = Path(__file__).resolve().parent
N_HID = 500
THRESHOLDS = (0.01, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
SCALE = {"place_cells": 1, "place_cells_significant": 1, "active_units": N_HID}  # counts vs fraction of units
METRICS = ["loss_norm", "active_fraction", "active_units", "si", "si_corrected", "place_cells",
           "place_cells_significant", "si_probe", "si_probe_corrected"]
SIGMA = 0.013894954943731374
VARIANTS = {  # name: {config section: overrides}
    "base-seed0": {},
    "texture-public": {"task": {"texture": "public"}},
    "heading-public": {"task": {"heading_change": "public"}},
    "base-seed1": {"run": {"seed": 1}},
    "base-seed2": {"run": {"seed": 2}},
    # half the learning rate, the same parameter noise η·σ_g, 3·10⁵ steps, λ_max every 10⁵: does λ_max
    # settle at 2/η again (gradient descent's edge of stability) or stay where lr 0.1 put it?
    "lr-0.05": {"learner": {"lr": 0.05}, "noise": {"sigma": 2 * SIGMA}, "run": {"steps": 300_000},
                "relu": {"hessian_every": 100_000}},
}


def _toml_value(v):
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def config_text(overrides: dict) -> str:
    """The Fig 2 config with overrides; metrics every 10³ steps, rate maps and checkpoints every 10⁵."""
    import tomllib
    cfg = tomllib.loads(BASE.read_text())
    cfg["run"].update({"log_every": 1000, "snapshot_every": 100_000, "checkpoint_every": 100_000,
                       "metrics": METRICS})
    cfg["relu"].update({"hessian_every": 0})
    for section, values in overrides.items():
        cfg[section].update(values)
    return "\n".join(f"[{sec}]\n" + "\n".join(f"{k} = {_toml_value(v)}" for k, v in body.items()) + "\n"
                     for sec, body in cfg.items())


def run_all(out: Path, flatland: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, overrides in VARIANTS.items():
        d = out / name
        if (d / "summary.json").exists():
            print(f"{name}: done", flush=True)
            continue
        cfg = out / f"{name}.toml"
        cfg.write_text(config_text(overrides))
        resume = ["--resume"] if (d / "checkpoint").exists() else []
        print(f"{name}: running", flush=True)
        subprocess.run([flatland, "run", str(cfg), "--out", str(d), "--quiet", *resume], check=True)


def end_hessian(out: Path, name: str) -> dict:
    """At the last checkpoint: the full Hessian's exact null dimension (structure; see the relu
    plugin's ``hessian.exact_null_dimension``), and λ_max · lr and the Gauss–Newton zero count from
    the run's last ``hessian.csv`` row."""
    import csv
    import tomllib
    import flatland
    from flatland_plugins.relu.hessian import exact_null_dimension

    cfg = tomllib.loads((out / f"{name}.toml").read_text())
    task = dict(cfg["task"])
    loss = flatland.assemble().registry.create("losses", task.pop("name"), **task)
    ctx = loss.extras["relu"]
    z = np.load(out / name / "checkpoint.npz")
    params = {"V": z["params/0"][0], "W": z["params/1"][0], "b": z["params/2"][0]}  # sorted pytree keys
    with open(out / name / "hessian.csv") as f:
        last = list(csv.DictReader(f))[-1]
    return {"exact_null_end": exact_null_dimension(params, ctx["X"], ctx["Y"], ctx["spec"]),
            "inactive_rows_end": int(last["structural_zeros"]), "gn_zero_end": int(last["n_zero"]),
            "eta_lambda_max_end": round(float(last["lambda_max"]) * cfg["learner"]["lr"], 3)}


def report(out: Path) -> None:
    import csv
    import flatland
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    at = [100_000, 400_000, 700_000, 1_000_000]
    paper = [199, 221, 170, 157]
    cols = ("place_cells", "place_cells_significant", "active_units")
    rows = []
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), sharex=True)
    for name in VARIANTS:
        f = out / name / "metrics.csv"
        if not f.exists():
            continue
        m = flatland.read_csv(f)
        if not m or m["step"].size == 0:   # a run still before its first checkpoint
            continue
        for t, p in [(int(m["step"][0]), "")] + list(zip(at, paper)):   # the first log: where each run starts
            i = np.nonzero(m["step"] == t)[0]
            if i.size:
                i = int(i[0])
                rows.append({"variant": name, "step": t, "paper_place_cells": p,
                             **{c: int(round(m[c][i] * SCALE[c])) for c in cols},
                             **{f"{k}_bits": round(float(m[k][i]), 3) for k in ("si", "si_corrected", "si_probe",
                                                                                 "si_probe_corrected")},
                             "loss_norm": round(float(m["loss_norm"][i]), 4)}
                            | (end_hessian(out, name) if t == at[-1] else {}))
        for ax, col in zip(axes, cols):
            ax.plot(m["step"], m[col] * SCALE[col], label=name, lw=1)
        line, = axes[3].plot(m["step"], m["si_probe_corrected"], lw=1)
        axes[3].plot(m["step"], m["si_corrected"], lw=1, ls="--", color=line.get_color())
    for ax, title in zip(axes, ("SI > 0.01 bits (the public code's rule)", "SI > 0.01 and > all 10 shuffles",
                                "active units")):
        ax.plot(at, paper, "ko", label="paper: place cells")
        ax.set(title=title, xlabel="step", ylabel=f"units of {N_HID}", ylim=(0, N_HID + 10))
    axes[3].set(title="mean SI, shuffle-corrected: probe walk (solid),\n150 training samples (dashed)",
                xlabel="step", ylabel="bits")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "place_cells.png", dpi=110)
    with open(HERE / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print(r)
    # every SI threshold at once, from the rate-map snapshots (per-unit raw SI, every 10⁵ steps)
    th_rows = []
    for name in VARIANTS:
        snaps = out / name / "snapshots"
        if not (snaps / f"step_{at[-1]:010d}.npz").exists():
            continue
        for th in THRESHOLDS:
            th_rows.append({"variant": name, "si_threshold_bits": th, **{
                f"step_{t}": int((np.load(snaps / f"step_{t:010d}.npz")["si"][0] > th).sum()) for t in at}})
    if th_rows:
        with open(HERE / "si_thresholds.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(th_rows[0]))
            w.writeheader()
            w.writerows(th_rows)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("run", "report"):
        sys.exit("usage: python study.py run|report OUT_DIR [FLATLAND]")
    if sys.argv[1] == "run":
        run_all(Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "flatland")
    else:
        report(Path(sys.argv[2]))
