"""``flatland run CONFIG.toml [--steps N] [--out DIR] [--resume]``: a long run of any task, with checkpoints and figures.

Writes into DIR (default ``runs/<config name>``): ``config.toml`` (resolved
settings), ``versions.json`` (Python, packages, plugin distributions),
``metrics.csv`` (step, seed, the registered metrics of ``[run] metrics`` —
pandas reads it), ``checkpoint.npz`` (atomic, every ``checkpoint_every``
steps), ``summary.json`` (final seed means, extension reports) and
``figures/metrics.png``; run extensions that apply to the task add their own
files (for the relu tasks: ``hessian.csv``, ``snapshots/``, timescale and
phases, Fig 2 figures). DIR must be new or empty (nothing already there is
deleted or appended to), and one run at a time writes into it (a lock file,
``.flatland.lock``). ``--resume`` continues a killed run exactly as if it
had not stopped. Exit status 0 when the run finishes, 1 when it diverged
(NaN/inf params; the step is reported and the rows logged up to it kept), 2 for bad input.
"""
import sys
from pathlib import Path


def add_parser(sub):
    p = sub.add_parser("run", help="run a configuration of any task (long runs, checkpoints, figures)",
                       description=__doc__.splitlines()[0])
    p.add_argument("config", metavar="CONFIG.toml", help="run configuration (see examples/)")
    p.add_argument("--steps", type=int, metavar="N", help="total steps, any N ≥ 1 (overrides [run] steps; may extend a resumed run)")
    p.add_argument("--out", metavar="DIR", help="results folder (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..config import load, from_dict
    from ..errors import UserError
    from .. import runner

    cfg = load(args.config)
    if args.steps is not None:
        if args.steps < 1:
            raise UserError(f"--steps must be ≥ 1, got {args.steps}")
        d = cfg.to_dict()
        d["run"]["steps"] = args.steps
        cfg = from_dict(d)
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    summary = runner.run(cfg, out, resume=args.resume, progress=not args.quiet, figures=not args.no_figures)
    fin = summary.get("final", {})
    line = ", ".join(f"{k} {v:.4g}" for k, v in fin.items())
    d = summary.get("diverged")
    if d:
        print(f"flatland run: stopped at step {d['step']:,} of {cfg.run['steps']:,} after "
              f"{summary['wall_seconds']:.1f} s → {out}")
        print(f"  last logged before it (seed mean, step {summary['final_step']:,}): {line}" if line
              else f"  nothing was logged before it (the first log is at step {cfg.run['log_every']:,})")
    else:
        print(f"flatland run: {summary['steps_done']:,} steps in {summary['wall_seconds']:.1f} s → {out}")
        if line:
            print(f"  final (seed mean): {line}")
    for note in summary.get("notes", []):
        print(f"  {note}")
    if d:
        print(f"flatland run: diverged (non-finite params) at step {d['step']:,} in seed {d['seed']}; "
              f"the metrics logged before it are in {out / 'metrics.csv'}", file=sys.stderr)
        return 1
    return 0
