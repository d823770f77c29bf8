"""Symbolic derivation time of ``flatland.theory`` for each built-in loss with an expression.

For every registered loss carrying ``expr``/``residual_exprs`` it times, in
one fresh process (nothing cached between losses, since each is a different
problem): parsing; the Hessian and third derivatives (or J and ∂J); the rank on
Γ at the loss's point; the closed-form regularizers and drift gradients for
update and label noise (leading and finite η); and lambdifying the compiled
JAX predictions for both (not their jit compilation, which is JAX's).

    .venv/bin/python benchmarks/theory_derivation.py [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time

import flatland
from flatland.theory import Problem, compile_prediction
from flatland.theory import _closed, _symbolic
from flatland.theory._compile import default_rank


def derive(loss) -> dict:
    """Seconds for each stage of the symbolic derivation of one loss."""
    times = {}
    t0 = time.perf_counter()
    problem = Problem.from_loss(loss)
    times["parse"] = time.perf_counter() - t0

    t = time.perf_counter()
    _symbolic.hessian(problem)
    _symbolic.third(problem)
    if problem.has_residuals:
        _symbolic.jacobian_derivs(problem)
    times["derivatives"] = time.perf_counter() - t

    t = time.perf_counter()
    m = default_rank(problem)
    times["rank_seconds"] = time.perf_counter() - t

    t = time.perf_counter()
    reg = flatland.assemble().registry
    gd = reg.create("learners", "gd")
    noises = [flatland.step_law(reg.create("noise", n), gd)[0]
              for n in (["update", "label"] if problem.has_residuals else ["update"])]
    for noise in noises:
        for finite in (False, True):
            _closed.regularizer(problem, noise, m, finite)
            _closed.drift_gradient(problem, noise, m, finite)
    times["closed_forms"] = time.perf_counter() - t

    t = time.perf_counter()
    for noise in noises:
        compile_prediction(problem, noise, rank=m)
    times["lambdify"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t0
    return {"loss": loss.name, "dim": problem.dim, "rank": m,
            "residuals": None if problem.residual_exprs is None else len(problem.residual_exprs), **times}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    registry = flatland.assemble().registry
    rows = []
    for entry in registry.entries("losses"):
        loss = entry.factory()
        if not (loss.expr or loss.residual_exprs):
            continue
        rows.append(derive(loss))
    print(f"{'loss':<16} {'d':>3} {'m':>3} {'parse':>7} {'derivs':>7} {'rank':>7} {'closed':>7} {'lambdify':>8} {'total':>7}  (seconds)")
    for r in rows:
        print(f"{r['loss']:<16} {r['dim']:>3} {r['rank']:>3} {r['parse']:7.3f} {r['derivatives']:7.3f} "
              f"{r['rank_seconds']:7.3f} {r['closed_forms']:7.3f} {r['lambdify']:8.3f} {r['total']:7.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
