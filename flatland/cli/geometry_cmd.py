"""``flatland geometry FILE.npz``: drift-geometry report and figures for recorded-style responses."""
import json
import os

from ..errors import UserError
from ..results import jsonable


def add_parser(sub):
    p = sub.add_parser("geometry", help="drift geometry of responses in an .npz file",
                       description=__doc__.splitlines()[0] + " Array: sessions × stimulus groups × repeats × "
                       "neurons; optional 'resample' (independent passes) and 'readout' arrays.")
    p.add_argument("file", metavar="FILE.npz")
    p.add_argument("--key", default="responses", help="name of the responses array (default: responses)")
    p.add_argument("--out", help="folder for figures and report.json (default: FILE_geometry next to FILE)")
    p.add_argument("--classifier", choices=("ridge", "svc"), default="ridge",
                   help="linear classifier: closed-form ridge (default, fast) or sklearn LinearSVC")
    p.add_argument("--no-figures", action="store_true", help="print the report only")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..geometry import measure
    from ..geometry.io import load_responses
    from ..geometry.report import report_lines

    R, B, W = load_responses(args.file, args.key)
    m = measure(R, B, W, kind=args.classifier)
    how = "independent 'resample' array" if B is not None else "even vs odd repeats (split halves)"
    for line in report_lines(m, f"{args.file}: {R.shape[0]} sessions × {R.shape[1]} groups × {R.shape[2]} "
                                f"repeats × {R.shape[3]} neurons; control = {how}"):
        print(line)
    if args.no_figures:
        return 0
    out = args.out or os.path.splitext(args.file)[0] + "_geometry"
    try:
        from ..geometry.figures import write_figures

        paths = write_figures({os.path.basename(args.file): m}, out)
        summary = {k: {str(t): m.summary(k, t)[:2] for t in [0] + m.dts()} for k in m.metrics()}
        with open(os.path.join(out, "report.json"), "w") as fh:
            json.dump(jsonable({"file": args.file, "shape": list(R.shape), "control": how, "summary": summary}), fh,
                      indent=1)
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc}") from None
    print(f"figures: {', '.join(paths)}; summary: {os.path.join(out, 'report.json')}")
    return 0
