"""RMSprop's sparsification on the relu suite's net: when does it happen, relative to the fit?

What: ``python study.py run OUT`` runs each variant below from the paper's lazy
initialisation as an ordinary ``flatland run`` into ``OUT/<variant>`` (corridor
task, width 50, float64, 8 seeds, 2×10⁴ steps, no added noise, the three
metrics logged every 10 steps). It then runs the suite row itself — RMSprop from
the row's GD-converged start, its 8 seeds and logs every 500 steps — for
2×10⁴, 6×10⁴ and 3×10⁵ steps into ``OUT/converged-<steps>.npz``.
``python study.py report OUT`` writes ``results.csv`` (the variants) and
``converged.csv`` (the row at three lengths: where its t_p lands, the fall it
counts, and the late plateau) next to this file, and prints both.

Why: the suite's row ``relu-rmsprop-sparsifies`` fails (its active fraction
falls too little after the loss plateau t_p). Its explanation was "a start-up
transient of the zero-initialised second moment, while the loss still falls".
Logs every 10 steps test both halves: when the loss stops falling, and whether
the fall survives bias correction (which removes the start-up kick). Plain GD
(the suite's lr 0.4) is the control: a learner that fits without sparsifying.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STEPS, LOG_EVERY, SEEDS = 20_000, 10, 8
AT = (10, 30, 100, 300, 1000, 3000, 10_000, 20_000)  # steps reported in the table
WINDOW = (30, 1000)  # after RMSprop's fit (done by step 30) and before its loss falls further
RMSPROP = {"name": "rmsprop", "lr": 0.01, "decay": 0.99, "eps_in_sqrt": False}  # PyTorch's defaults
VARIANTS = {  # name: [learner] section
    "rmsprop-pytorch": RMSPROP,
    "rmsprop-bias-corrected": RMSPROP | {"bias_correction": True},
    "rmsprop-lr0.003": RMSPROP | {"lr": 0.003},
    "adam-lr0.05": {"name": "adam", "lr": 0.05},   # the suite's Adam row, which passes
    "gd-lr0.4": {"name": "gd", "lr": 0.4},         # the suite's GD control
}


def _toml(v):
    return ("true" if v else "false") if isinstance(v, bool) else f'"{v}"' if isinstance(v, str) else repr(v)


def config_text(learner: dict) -> str:
    lines = ["[task]", 'name = "corridor"', "seed = 0", "n_hid = 50", 'dtype = "float64"', "", "[learner]"]
    lines += [f"{k} = {_toml(v)}" for k, v in learner.items()]
    lines += ["", "[noise]", 'name = "none"', "", "[run]", f"steps = {STEPS}", f"seeds = {SEEDS}", "seed = 0",
              f"log_every = {LOG_EVERY}", 'metrics = ["loss_norm", "active_fraction", "active_units"]', ""]
    return "\n".join(lines)


LENGTHS = (20_000, 60_000, 300_000)  # the suite row's run at its own length and longer


def run_converged(out: Path, steps: int) -> None:
    """The suite row's RMSprop run (its start, seeds, logging and metrics), for ``steps`` steps."""
    from flatland_plugins.relu import checks
    checks.CONDITIONS["rmsprop"] = checks.CONDITIONS["rmsprop"][:5] + (steps,)
    checks._condition.cache_clear()
    c = checks._condition(0, "rmsprop")
    np.savez(out / f"converged-{steps}.npz", steps=c["steps"], **c["records"])


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, learner in VARIANTS.items():
        if (out / name / "summary.json").exists():
            continue
        cfg = out / f"{name}.toml"
        cfg.write_text(config_text(learner))
        subprocess.run(["flatland", "run", str(cfg), "--out", str(out / name)], check=True)
    for steps in LENGTHS:
        if not (out / f"converged-{steps}.npz").exists():
            run_converged(out, steps)


def seed_means(path: Path) -> dict[str, np.ndarray]:
    """Seed-mean metric per logged step, as arrays over the logged steps."""
    rows = list(csv.DictReader(path.open()))
    steps = np.unique([int(r["step"]) for r in rows])
    out = {"step": steps}
    for key in ("loss_norm", "active_fraction", "active_units"):
        table = np.zeros((SEEDS, steps.size))
        for r in rows:
            table[int(r["seed"]), np.searchsorted(steps, int(r["step"]))] = float(r[key])
        out[key] = table.mean(0)
        out[key + "_seeds"] = table
    return out


def end_anchored_start(loss: np.ndarray) -> int:
    """The plateau rule the relu checks used until 2026-12-05, kept here to reproduce what the row saw: the
    first logged point whose 5-point running median is within ×1.5 of the end level (mean of the last 10%)."""
    level = loss[-max(1, int(round(0.1 * loss.size))):].mean()
    padded = np.pad(np.asarray(loss, float), 2, constant_values=np.nan)   # centred, shrinking at the ends
    med = np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, 5), axis=1)
    hits = np.nonzero((med <= 1.5 * level) & (med >= level / 1.5))[0]
    return int(hits[0]) if hits.size else loss.size - 1


def row_plateau(m: dict, every: int) -> list:
    """From logs every ``every`` steps: t_p by the old end-anchored rule, and by the relu checks' rule now
    (``phases.loss_plateau``, with whether it is reached)."""
    from flatland_plugins.relu.checks import _plateau
    keep = (m["step"] % every) == 0
    steps, seeds = m["step"][keep], m["loss_norm_seeds"][:, keep]
    ip, _, reached, _ = _plateau(steps, {"loss_norm": seeds})
    return [int(steps[end_anchored_start(seeds.mean(0))]), int(steps[ip]), reached]


def window(m: dict) -> list[str]:
    """Over ``WINDOW``: the seed-mean loss ratio (end/start) and the relative fall of the active fraction,
    mean ± s.e. over seeds."""
    i, j = (int(np.searchsorted(m["step"], t)) for t in WINDOW)
    fall = 1 - m["active_fraction_seeds"][:, j] / m["active_fraction_seeds"][:, i]
    return [f"{m['loss_norm'][j] / m['loss_norm'][i]:.3f}", f"{fall.mean():.3f}",
            f"{fall.std(ddof=1) / np.sqrt(fall.size):.3f}"]


def report(out: Path) -> None:
    header = (["variant"] + [f"loss@{t}" for t in AT] + [f"active@{t}" for t in AT]
              + ["t_p_end_anchored(500-step logs)", "t_p(500-step logs)", "reached(500-step logs)",
                 "t_p_end_anchored(10-step logs)", "t_p(10-step logs)", "reached(10-step logs)",
                 "window_loss_ratio", "window_active_fall", "window_active_fall_se"])
    table = [header]
    for name in VARIANTS:
        m = seed_means(out / name / "metrics.csv")
        at = [int(np.searchsorted(m["step"], t)) for t in AT]
        table.append([name] + [f"{m['loss_norm'][i]:.4g}" for i in at] + [f"{m['active_fraction'][i]:.3f}" for i in at]
                     + row_plateau(m, 500) + row_plateau(m, LOG_EVERY) + window(m))
    _write("results.csv", table)
    _write("converged.csv", converged_table(out))


def converged_table(out: Path) -> list[list]:
    """Per run length: the row's t_p by the old end-anchored rule and by the current one, the active fraction
    there and at the end, and the late plateau."""
    from flatland_plugins.relu.checks import _end, _plateau
    # relative_fall_gross: 1 − end/t_p of the active fraction; the row also subtracts the GD control's
    table = [["steps", "t_p_end_anchored", "loss@t_p", "loss_end", "active@t_p", "active_end", "relative_fall_gross",
              "t_p", "reached", "active@t_p_now", "relative_fall_gross_now", "active@30000", "loss@30000"]]
    for steps in LENGTHS:
        r = dict(np.load(out / f"converged-{steps}.npz"))
        af, loss = r["active_fraction"].mean(0), r["loss_norm"].mean(0)
        ip = end_anchored_start(loss)
        now, _, reached, _ = _plateau(r["steps"], r)
        end_af, end_loss = float(_end(r["active_fraction"]).mean()), float(_end(r["loss_norm"]).mean())
        i30 = int(np.searchsorted(r["steps"], 30_000))
        late = [f"{af[i30]:.4f}", f"{loss[i30]:.4g}"] if i30 < af.size else ["", ""]
        table.append([steps, int(r["steps"][ip]), f"{loss[ip]:.4g}", f"{end_loss:.4g}", f"{af[ip]:.4f}",
                      f"{end_af:.4f}", f"{1 - end_af / af[ip]:.3f}", int(r["steps"][now]), reached,
                      f"{af[now]:.4f}", f"{1 - end_af / af[now]:.3f}"] + late)
    return table


def _write(name: str, table: list[list]) -> None:
    with (HERE / name).open("w", newline="") as f:
        csv.writer(f).writerows(table)
    print(name)
    for r in table:
        print(",".join(map(str, r)))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("run", "report"):
        sys.exit("usage: python study.py run|report OUT")
    {"run": run, "report": report}[sys.argv[1]](Path(sys.argv[2]))
