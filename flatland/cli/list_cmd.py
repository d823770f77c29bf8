"""``flatland list [KIND] [--json]``: registered components with summary and origin (checks: their suite;
learners and noise models: their hyperparameters' defaults, the keys a config's ``[learner]``/``[noise]``
table and a sweep set)."""
import json
import sys

from ..assembly import assemble
from ..contracts import KINDS
from ..errors import unknown_name


def add_parser(sub):
    p = sub.add_parser("list", help="list registered components", description=__doc__.splitlines()[0])
    p.add_argument("kind", nargs="?", metavar="KIND", help=f"one of: {', '.join(KINDS)}")
    p.add_argument("--json", action="store_true", help="print a JSON list of {kind, name, summary, origin} "
                                                       "(checks: suite; learners, noise: hyper)")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.kind is not None and args.kind not in KINDS:
        raise unknown_name("component kind", args.kind, KINDS)
    asm = assemble()
    entries = list(asm.registry.entries(args.kind))
    suites = {e.name: e.factory().suite for e in entries if e.kind == "checks"}  # built at assembly already
    hypers = {(e.kind, e.name): _hyper(e) for e in entries if e.kind in ("learners", "noise")}
    if args.json:
        print(json.dumps([e.to_json() | ({"suite": suites[e.name]} if e.kind == "checks" else {})
                          | ({"hyper": hypers[e.kind, e.name]} if hypers.get((e.kind, e.name)) is not None else {})
                          for e in entries], indent=2, ensure_ascii=False))
    else:
        kind = None
        width = max((len(e.name) for e in entries), default=0)
        for e in entries:
            if e.kind != kind:
                kind = e.kind
                print(f"{kind}:")
            suite = f"(suite {suites[e.name]}) " if e.kind == "checks" else ""
            suite = "" if e.summary.startswith(suite) else suite   # a summary that already says it
            h = hypers.get((e.kind, e.name))
            hyper = f" (hyper {', '.join(f'{k} = {v:g}' for k, v in h.items())})" if h else ""
            print(f"  {e.name:<{width}}  {suite}{e.summary}{hyper}  [{e.origin}]")
    for b in asm.broken:
        print(f"flatland: warning: plugin {b.name!r} from {b.distribution} left out: {b.error}", file=sys.stderr)
    return 0


def _hyper(entry):
    """A learner's or noise model's hyperparameter defaults, built with default options (None if it cannot be
    built without options: its summary says what it needs)."""
    try:
        return {k: float(v) for k, v in entry.factory().hyper.items()}
    except Exception:  # noqa: BLE001 - listing must not fail on one component; `flatland plugins` reports broken ones
        return None
