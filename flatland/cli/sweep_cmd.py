"""``flatland sweep SWEEP.toml [--out DIR] [--scheduler ADDRESS] [--workers N] [--resume]``: a study of many runs on Dask.

Each point of the sweep file (a base run config and axes; see
``examples/sweeps/`` and :mod:`flatland.sweep_spec`) runs as an ordinary
``flatland run`` into ``DIR/runs/<index>-<id>/``; one row per run goes to
``DIR/table.parquet`` (pandas reads it); ``flatland report DIR`` makes the
figures and the summary. Without ``--scheduler`` a local Dask cluster of
``--workers`` processes (default: one per core), one thread each and each
bound to its own core, runs the points; with it, the cluster at ADDRESS is used
as it is (start its workers with ``--nthreads 1``, each bound to a core, e.g.
under ``taskset -c N``). ``--resume`` continues a killed sweep: finished runs are
kept, partial ones continue from their last checkpoint. Exit status 0 when
every run finished (done or diverged), 1 when some failed, 2 for bad input.
"""
from pathlib import Path


def add_parser(sub):
    p = sub.add_parser("sweep", help="run a sweep file's points on Dask into one Parquet table",
                       description=__doc__.splitlines()[0])
    p.add_argument("sweep", metavar="SWEEP.toml", help="sweep file (see examples/sweeps/)")
    p.add_argument("--out", metavar="DIR", help="sweep folder (default sweeps/<sweep file name>)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="use this running Dask scheduler, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: one per core)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in --out (finished runs are kept)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..sweep_run import run_sweep

    out = Path(args.out) if args.out else Path("sweeps") / Path(args.sweep).stem
    res = run_sweep(args.sweep, out, scheduler=args.scheduler, workers=args.workers, resume=args.resume,
                    progress=not args.quiet)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(res["counts"].items()))
    print(f"flatland sweep: {res['points']} points ({res['ran']} run now): {counts} → {res['table']}")
    print(f"  next: flatland report {out}")
    return 1 if res["counts"].get("failed") else 0
