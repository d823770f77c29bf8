"""``flatland reproduce aitken2022``: the paper's drift-geometry claims, measured here, with verdicts."""
import json
import os
import sys

from ..errors import unknown_name
from ..results import jsonable

PAPERS = ("aitken2022",)


def add_parser(sub):
    p = sub.add_parser("reproduce", help="reproduce a paper's claims and print verdicts",
                       description=__doc__.splitlines()[0])
    p.add_argument("paper", metavar="PAPER", help=f"one of: {', '.join(PAPERS)}")
    p.add_argument("--quick", action="store_true", help="short protocol (4 sessions 390 steps apart) for a first look")
    p.add_argument("--runs", type=int, default=3, help="independent networks per noise type (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pretrained networks and the noise (default 0)")
    p.add_argument("--record", choices=("noisy", "clean"), default="noisy",
                   help="responses from noisy forward passes (default) or noise-free passes")
    p.add_argument("--out", default="reproduce-aitken2022", help="folder for figures and claims.json")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.paper not in PAPERS:
        raise unknown_name("paper", args.paper, PAPERS)
    from ..errors import UserError

    if args.runs < 2:
        raise UserError("--runs must be at least 2 (standard errors need replicates)")
    from ..geometry.claims import judge
    from ..geometry.experiment import DEFAULT
    from ..geometry.figures import write_figures
    from ..geometry.study import QUICK, run_study

    import dataclasses

    protocol = dataclasses.replace(QUICK if args.quick else DEFAULT, record=args.record)
    print(f"aitken2022 on digits (MLP 64→120→84→10): {args.runs} networks per noise type, protocol {protocol}; "
          "noise types matched to node dropout (p = 0.5) for clean drift per interval", file=sys.stderr)
    from ..progress import Progress

    bar = Progress(1, label="aitken2022", unit="stages", min_interval=0.0)   # total set by the first stage

    def progress(done, total, note):
        bar.total = total
        bar.update(done, note)

    results = run_study(protocol=protocol, runs=args.runs, seed=args.seed, match_to="node-dropout",
                        progress=progress)
    bar.close()
    claims, scores = judge(results)
    for c in claims:
        print(f"[{c.verdict:^14s}] {c.claim}\n    measured {c.measured} | control {c.control} | paper {c.paper}\n"
              f"    rule: {c.rule}")
    counts = {v: sum(c.verdict == v for c in claims) for v in ("reproduced", "partly", "not reproduced")}
    print("summary: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    os.makedirs(args.out, exist_ok=True)
    paths = write_figures({n: r.measurement for n, r in results.items()}, args.out)
    with open(os.path.join(args.out, "claims.json"), "w") as fh:
        json.dump(jsonable({"claims": [c.__dict__ for c in claims], "signatures": scores,
                            "hyper": {n: r.hyper for n, r in results.items()},
                            "matching": {n: r.matching for n, r in results.items()}}), fh, indent=1, default=str)
    print(f"figures: {', '.join(paths)}; claims: {os.path.join(args.out, 'claims.json')}")
    return 0
