"""``flatland plugins [--json]``: each loaded plugin with version, origin and hooks."""
import json

from ..assembly import assemble


def add_parser(sub):
    p = sub.add_parser("plugins", help="list loaded plugins (name, version, origin, hooks)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    asm = assemble()
    if args.json:
        print(json.dumps({"plugins": [p.to_json() for p in asm.plugins],
                          "broken": [b.to_json() for b in asm.broken]}, indent=2))
        return 0
    for p in asm.plugins:
        print(f"{p.name}  {p.version}  [{p.origin}]  hooks: {', '.join(p.hooks) or '-'}")
    for b in asm.broken:
        print(f"BROKEN {b.name} from {b.distribution}: {b.error}")
    return 0
