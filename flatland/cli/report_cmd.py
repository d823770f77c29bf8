"""``flatland report SWEEP_DIR``: a sweep's figures and statistics, each paper number beside flatland's.

Reads ``SWEEP_DIR/table.parquet`` (written by ``flatland sweep``) and writes
``report.md`` (Markdown: runs per status and mechanism, start → end change of
every logged metric with 95% intervals, and each task family's claims with a
verdict), ``claims.json`` and ``figures/*.png`` into SWEEP_DIR. A report of a
sweep still running or stopped uses the runs finished so far and says so.
"""


def add_parser(sub):
    p = sub.add_parser("report", help="figures and statistics of a sweep folder (report.md, claims.json)",
                       description=__doc__.splitlines()[0])
    p.add_argument("sweep_dir", metavar="SWEEP_DIR", help="the --out folder of a `flatland sweep`")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..sweep_report import report

    res = report(args.sweep_dir)
    for c in res["claims"]:
        est = "–" if c["estimate"] != c["estimate"] else f"{c['estimate']:.3g} [{c['lo']:.3g}, {c['hi']:.3g}]"
        print(f"[{c['verdict']:^14s}] {c['claim']}: measured {est} (n = {c['n']}), paper {c['paper']:.3g}")
    print(f"flatland report: {res['report']} ({len(res['figures'])} figures)")
    return 0
