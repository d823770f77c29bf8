"""Full-Hessian SLQ (plugins/relu/slq.py): accuracy at P ≈ 2,000 against dense eigh, wall time at P = 18,000.

What it measures, in one run on this machine:
1. accuracy at P = 1,980 (corridor, 18 → 55 → 17, T = 150, initialisation plus
   10 GD steps at lr 0.1: an indefinite full Hessian) with the default
   settings, against ``jax.hessian`` + dense ``eigh``: relative errors of the
   top five eigenvalues, of λ_min (also per spectral width), the residual
   bounds, tr H (exact path and the Hutchinson estimate in standard errors), the
   density distance W₁(SLQ measure, exact eigenvalue measure)/(λ_max − λ_min)
   beside its a-priori bound ``slq.w1_bound``, and the SLQ estimate of the
   number of negative eigenvalues beside the exact count;
2. wall time at P = 18,000 (Fig 2 size: corridor, 18 → 500 → 17, T = 150) of
   ``slq.spectrum`` with the defaults, timed after JIT compilation (compiled
   once ahead of time to time the compile alone; wall and CPU seconds), at initialisation and —
   unless ``quick`` — after 5,000 GD steps at lr 0.1 (a trained-ish point).

    .venv/bin/python benchmarks/hessian_slq.py [--quick] [--json out.json]

Target: full-Hessian SLQ at P = 18,000 in ≤ 60 s, accuracy at 2k stated.
The machine's load average is printed: a busy machine inflates every time.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import jax

import flatland
from flatland_plugins.relu import hessian as HS, slq as S


def _point(n_hid, gd_steps, lr=0.1):
    reg = flatland.assemble(strict=True).registry
    loss = reg.create("losses", "corridor", seed=0, n_hid=n_hid)
    p = loss.init(jax.random.key(0))
    if gd_steps:
        g = jax.grad(loss)
        step = lambda i, q: jax.tree_util.tree_map(lambda a, b: a - lr * b, q, g(q))  # noqa: E731
        p = jax.jit(lambda q: jax.lax.fori_loop(0, gd_steps, step, q))(p)
    return loss, loss.extras["relu"], jax.block_until_ready(p)


def accuracy_2k() -> dict:
    loss, ctx, p = _point(55, 10)
    spec = ctx["spec"]
    t0 = time.perf_counter()
    e = np.linalg.eigvalsh(np.asarray(HS.full_hessian(p, ctx["X"], ctx["Y"], spec, ctx["kappa"])))
    dense_s = time.perf_counter() - t0
    r = HS.functionals(p, ctx, method="slq")
    width = e[-1] - e[0]
    return {
        "n_params": spec.n_params, "loss": float(loss(p)), "dense_eigh_seconds": dense_s,
        "order": r["order"], "slq_order": r["slq_order"], "n_probes": r["n_probes"],
        "lambda_max": float(e[-1]), "lambda_min": float(e[0]),
        "top5_rel_err": [float(x) for x in np.abs(r["ritz"][-5:][::-1] / e[-5:][::-1] - 1)],
        "top5_residual": [float(x) for x in r["ritz_residual"][-5:][::-1]],
        "lambda_min_rel_err": float(abs(r["lambda_min"] / e[0] - 1)),
        "lambda_min_err_per_width": float(abs(r["lambda_min"] - e[0]) / width),
        "lambda_min_residual": r["lambda_min_residual"],
        "trace_rel_err": float(abs(r["trace"] / e.sum() - 1)),
        "trace_slq_z": float((r["trace_slq"] - e.sum()) / r["trace_slq_sem"]),
        "trace_slq_rel_err": float(abs(r["trace_slq"] / e.sum() - 1)),
        "w1_per_width": S.wasserstein1(r["nodes"], r["weights"], e) / width,
        "w1_bound": S.w1_bound(r, e), "w1_bound_worst_case": S.w1_bound(r),
        "n_negative_exact": int(np.sum(e < -r["tol"])), "n_negative_ritz_lower_bound": r["n_negative"],
        "n_negative_slq": r["n_negative_slq"], "n_negative_slq_range": r["n_negative_slq_range"],
    }


def timing_18k(gd_steps: int, repeats: int, first: bool = True) -> dict:
    loss, ctx, p = _point(500, gd_steps)
    assert ctx["spec"].n_params == 18_000 and ctx["X"].shape == (150, 18)
    args, statics, _ = S._inputs(p, ctx, S.ORDER, S.SLQ_ORDER, S.N_PROBES, 0)
    w0, c0 = time.perf_counter(), time.process_time()
    S._core.lower(*args, **statics).compile()          # ahead-of-time: the compile alone
    compile_wall, compile_cpu = time.perf_counter() - w0, time.process_time() - c0
    if not first:                                      # same shapes as before: JAX reuses the executable
        compile_wall = compile_cpu = None
    S.spectrum(p, ctx)                                 # fills jit's own cache (compiles again), untimed
    runs, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        r = S.spectrum(p, ctx)
        runs.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {
        "gd_steps": gd_steps, "loss": float(loss(p)), "active_parameters": r["solved_size"],
        "seconds": min(runs), "all_seconds": runs, "cpu_seconds": cpus,
        "compile_seconds": compile_wall, "compile_cpu_seconds": compile_cpu,
        "lambda_max": r["lambda_max"], "lambda_max_residual": r["lambda_max_residual"],
        "lambda_min": r["lambda_min"], "lambda_min_residual": r["lambda_min_residual"],
        "trace": r["trace"], "trace_slq": r["trace_slq"], "trace_slq_sem": r["trace_slq_sem"],
    }


def slq_benchmark(quick: bool = False) -> dict:
    """Accuracy at P = 1,980 and time at P = 18,000 (see the module doc); ``quick``: init point, one timed run."""
    out = {"load_average_before": os.getloadavg(), "cpus": os.cpu_count(),
           "defaults": {"order": S.ORDER, "slq_order": S.SLQ_ORDER, "n_probes": S.N_PROBES}}
    out["accuracy_2k"] = accuracy_2k()
    out["time_18k"] = [timing_18k(0, 1 if quick else 2)] + ([] if quick else [timing_18k(5000, 2, first=False)])
    out["load_average_after"] = os.getloadavg()
    return out


def _print(res):
    a = res["accuracy_2k"]
    print(f"cpus {res['cpus']}, load average {res['load_average_before'][0]:.1f} before, "
          f"{res['load_average_after'][0]:.1f} after (a busy machine inflates the times)")
    print(f"defaults: order {res['defaults']['order']}, slq_order {res['defaults']['slq_order']}, "
          f"n_probes {res['defaults']['n_probes']}")
    print(f"\naccuracy at P = {a['n_params']} (loss {a['loss']:.4g}; dense jax.hessian + eigh {a['dense_eigh_seconds']:.1f} s):")
    print("  top-5 eigenvalues, relative error: " + ", ".join(f"{x:.1e}" for x in a["top5_rel_err"]))
    print("  their residual bounds:            " + ", ".join(f"{x:.1e}" for x in a["top5_residual"]))
    print(f"  λ_max {a['lambda_max']:.6g}, λ_min {a['lambda_min']:.6g}: λ_min relative error {a['lambda_min_rel_err']:.1e} "
          f"({a['lambda_min_err_per_width']:.1e} of the width), residual bound {a['lambda_min_residual']:.1e}")
    print(f"  tr H (exact path) relative error {a['trace_rel_err']:.1e}; Hutchinson estimate "
          f"{a['trace_slq_rel_err']:.1%} off = {a['trace_slq_z']:+.2f} standard errors")
    print(f"  density: W1/(λ_max − λ_min) = {a['w1_per_width']:.2e} (a-priori bound on its mean "
          f"{a['w1_bound']:.2e}; worst case {a['w1_bound_worst_case']:.2e})")
    lo, hi = a["n_negative_slq_range"]
    print(f"  negative eigenvalues: exact {a['n_negative_exact']}; Ritz lower bound {a['n_negative_ritz_lower_bound']}; "
          f"SLQ estimate {a['n_negative_slq']:.0f}, quadrature bracket [{lo:.0f}, {hi:.0f}] (most sit near 0)")
    for t in res["time_18k"]:
        print(f"\nP = 18,000, T = 150, after {t['gd_steps']} GD steps (loss {t['loss']:.4g}, "
              f"{t['active_parameters']} active parameters):")
        print(f"  spectrum: {t['seconds']:.1f} s after compilation (runs: "
              + ", ".join(f"{x:.1f}" for x in t["all_seconds"]) + " s wall; "
              + ", ".join(f"{x:.1f}" for x in t["cpu_seconds"]) + " s CPU, both threads)")
        if t["compile_seconds"] is not None:
            print(f"  compile (ahead of time): {t['compile_seconds']:.1f} s wall, {t['compile_cpu_seconds']:.1f} s CPU")
        print(f"  λ_max {t['lambda_max']:.8g} (residual {t['lambda_max_residual']:.1e}), "
              f"λ_min {t['lambda_min']:.6g} (residual {t['lambda_min_residual']:.1e}), "
              f"tr H {t['trace']:.6g}, Hutchinson {t['trace_slq']:.6g} ± {t['trace_slq_sem']:.2g}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="initialisation point only, one timed run")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    res = slq_benchmark(quick=args.quick)
    _print(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=float)
    return res


if __name__ == "__main__":
    main()
