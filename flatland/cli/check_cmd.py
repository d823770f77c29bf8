"""``flatland check``: measure drift in simulation and check it against the theory.

Examples::

    flatland check                                   # the built-in valley suite
    flatland check --suite relu --out results/relu   # another suite
    flatland check --loss "(x*y)**2" --at x=1,y=0 --noise update --sigma 0.01 --eta 0.05 --json
    flatland check --residuals "x*y - 1" --at x=2,y=0.5 --noise update --observable "x**2 - y**2"

With no loss it runs every registered check of the suite (default: valleys),
prints a table (prediction, measurement ± s.e., ratio, tolerance, verdict) and
exits 0 only if all pass. With --loss/--residuals it simulates the user's
valley at the point and compares the Rao–Blackwellised drift with the
finite-η prediction (exit 0 if within --tolerance, 1 if not; 0 when the
learner or noise declares no theory: the drift is measured, there is nothing
to judge, and results.json says "no prediction"). Either way a
results folder is written (--out, default ./flatland-results/<timestamp>/).
Compiled simulation loops are cached on disk (FLATLAND_XLA_CACHE=off to disable).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time

from ..errors import UserError

NOISE_HELP = ("any registered noise model (flatland list noise): none, update, gradient, label, uniform-label "
              "(--sigma is its width), minibatch, or a plugin's")


def add_parser(sub):
    p = sub.add_parser("check", help="check predicted drift against simulation (built-in suite or your valley)",
                       description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", help="which registered suite to run (default: valleys, or the suite of the checks "
                   "named by --only)")
    p.add_argument("--only", metavar="NAMES", help="run only these checks (comma separated; without --suite, "
                   "from whichever suite holds them)")
    p.add_argument("--out", metavar="DIR", help="results folder (default ./flatland-results/<timestamp>/)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--jobs", type=int, help="checks run in parallel threads (default: 2 for the valleys suite, "
                   "whose checks are thread-safe and overlap one's compilation with another's simulation; else 1)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--loss", metavar="EXPR_OR_NAME", help="your loss: an expression or a registered loss name")
    src.add_argument("--residuals", metavar="'R1, R2, ...'", help="residuals: L = κ Σ r_i²")
    p.add_argument("--kappa", type=float, help="κ with --residuals (default 0.5)")
    p.add_argument("--vars", metavar="x,y", help="variable order (default: alphabetical)")
    p.add_argument("--at", metavar="x=1,y=0", help="a point on (or near) the zero-loss manifold")
    p.add_argument("--noise", metavar="NAME", help=NOISE_HELP)
    p.add_argument("--sigma", type=float,
                   help="the noise model's scale (σ, or w for uniform-label); with --noise none, the learner's sigma; default 0.01")
    p.add_argument("--eta", type=float, help="the learner's step size lr (μ for sed; default 0.05)")
    from ._components import SET_HELP
    p.add_argument("--set", metavar="PART.KEY=V,...", help=SET_HELP)
    p.add_argument("--learner",
                   help="any registered learner (default gd; sed: stochastic error descent, its probe std s = "
                        "--sigma with --noise none); one that declares no theory is measured without a prediction")
    p.add_argument("--chains", type=int, help="chains (default: 4096 per batch, batches until decisive)")
    p.add_argument("--steps", type=int, help="measured steps per chain (default: from the relaxation time; "
                   "rounded up to whole chunks of 100 or 500 steps)")
    p.add_argument("--burn", type=int, help="burn-in steps (default: 10 relaxation times; rounded up like --steps)")
    p.add_argument("--observable", metavar="EXPR", help="also measure E[Δc] per step of c(θ), with the Itô term")
    p.add_argument("--tolerance", type=float, help="relative tolerance, below 1 (default 0.02)")
    p.set_defaults(run=run)


USER_ONLY = ("at", "noise", "kappa", "vars", "chains", "steps", "burn", "observable", "sigma", "eta", "set", "learner",
             "tolerance")
#: the defaults of the options that only a check of the user's own valley reads (None: not given)
USER_DEFAULTS = {"sigma": 0.01, "eta": 0.05, "learner": "gd", "tolerance": 0.02}


def enable_compilation_cache() -> str | None:
    """Keep XLA's compiled loops on disk between runs (a cold suite spends most of its time compiling).

    ``FLATLAND_XLA_CACHE`` = a folder, or ``off``; default ``$XDG_CACHE_HOME/flatland/xla``
    (``~/.cache/flatland/xla``). Only this command's process is affected.
    """
    import os

    where = os.environ.get("FLATLAND_XLA_CACHE", "")
    if where.strip().lower() in ("off", "0", "no", "false"):
        return None
    if not where:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        where = os.path.join(base, "flatland", "xla")
    try:
        os.makedirs(where, exist_ok=True)
        from flatland.compile_cache import use_compilation_cache

        use_compilation_cache(where, 0.5)
    except Exception:  # an unwritable cache only costs time
        return None
    return where


def run(args) -> int:
    enable_compilation_cache()
    if args.loss is None and args.residuals is None:
        given = [f"--{k}" for k in USER_ONLY if getattr(args, k) is not None]
        if given:
            raise UserError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --loss or --residuals "
                            "(your own valley); "
                            "without them flatland check runs the built-in suite")
        return run_suite(args)
    given = [f"--{k}" for k in ("suite", "only", "jobs") if getattr(args, k) is not None]
    if given:
        raise UserError(f"{', '.join(given)}: for the built-in suites only; with --loss/--residuals flatland check "
                        "runs one check on your valley (drop them)")
    from .check_user import run_user

    args.sigma_given = args.sigma is not None
    for k, v in USER_DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return run_user(args)


def format_table(rows) -> str:
    def num(v):
        return "—" if v is None or v != v else f"{v:.4g}"

    head = ("check", "prediction", "measurement ± s.e.", "ratio ± s.e.", "tolerance", "verdict")
    body = []
    for r in rows:
        ratio = "—" if r.ratio is None or r.ratio != r.ratio else f"{r.ratio:.4f} ± {r.ratio_stderr:.4f}"
        body.append((r.name, num(r.predicted), f"{num(r.measured)} ± {num(r.stderr)}", ratio, r.tolerance,
                     "PASS" if r.passed else "FAIL"))
    widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    out = [line(head), line(["-" * w for w in widths])] + [line(b) for b in body]
    for r in rows:
        notes = list(r.warnings) + ([r.details.get("verdict")] if not r.passed and r.details.get("verdict") else [])
        for w in dict.fromkeys(notes):
            out.append(f"  note [{r.name}]: {w}")
    return "\n".join(out)


def _suite_of(only, registry):
    """The one suite holding every check named in ``only`` (None without --only); one line if there is none."""
    if not only:
        return None
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    suite_of = {e.name: e.factory().suite for e in registry.entries("checks")}
    unknown = [w for w in wanted if w not in suite_of]
    if unknown:
        raise registry.unknown("checks", unknown[0])
    suites = sorted({suite_of[w] for w in wanted})
    if len(suites) > 1:
        where = "; ".join(f"{w} is in suite {suite_of[w]!r}" for w in wanted)
        raise UserError(f"--only names checks of several suites ({where}): run one suite at a time (--suite NAME)")
    return suites[0] if suites else None


def run_suite(args) -> int:
    from ..assembly import assemble
    from ..contracts import Check, CheckContext
    from ..lab import Lab
    from ..results import ResultsFolder

    asm = assemble()
    if args.suite is None:
        args.suite = _suite_of(args.only, asm.registry) or "valleys"
    checks = []
    for entry in asm.registry.entries("checks"):
        check = entry.factory()
        if isinstance(check, Check) and check.suite == args.suite:
            checks.append(check)
    if not checks:
        suites = sorted({e.factory().suite for e in asm.registry.entries("checks")})
        raise UserError(f"no checks in suite {args.suite!r} (suites: {', '.join(suites) or 'none registered'})"
                        + asm.registry.left_out_note())
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = sorted(set(wanted) - {c.name for c in checks})
        if unknown:
            elsewhere = {e.name: e.factory().suite for e in asm.registry.entries("checks") if e.name in unknown}
            hint = "; ".join(f"{n} is in suite {s!r} (use --suite {s})" for n, s in sorted(elsewhere.items()))
            raise UserError(f"unknown check(s) {', '.join(unknown)} in suite {args.suite!r} "
                            + (f"— {hint}" if hint else f"(known: {', '.join(c.name for c in checks)})")
                            + asm.registry.left_out_note())
        checks = [c for c in checks if c.name in wanted]
    out = ResultsFolder(args.out)
    out.start({"command": ["flatland", "check"] + sys.argv[2:] if sys.argv[1:2] == ["check"] else None,
               "suite": args.suite, "seed": args.seed, "checks": [c.name for c in checks], "out": str(out.path)}, asm.plugins)
    options = CheckContext(seed=args.seed, out=out, registry=asm.registry, _lab=Lab(asm.registry))
    jobs = args.jobs if args.jobs is not None else (2 if args.suite == "valleys" else 1)
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    t0, c0 = time.perf_counter(), time.process_time()
    results = run_checks(checks, options, jobs, quiet=args.json, on_done=_keeper(out, len(checks), args))
    rows = [r for name, got, _ in results for r in got]
    timings = {name: secs for name, _, secs in results}
    total = round(time.perf_counter() - t0, 2)
    total_cpu = round(time.process_time() - c0, 2)  # all threads of this process
    table = format_table(rows)
    passed = bool(rows) and all(r.passed for r in rows)
    summary = (f"{sum(bool(r.passed) for r in rows)}/{len(rows)} passed in {total:.1f} s wall ({total_cpu:.0f} s CPU, "
               f"{jobs} job{'s' if jobs > 1 else ''}) — results in {out.path}")
    out.bars(rows)
    (out.path / "partial.json").unlink(missing_ok=True)  # results.json supersedes it
    out.finish(rows, table + "\n\n" + summary, {"timings_seconds": timings, "total_seconds": total, "jobs": jobs,
                                                "total_cpu_seconds": total_cpu, "passed": passed})
    if args.json:
        from ..results import jsonable

        print(json.dumps(jsonable({"suite": args.suite, "passed": passed, "results": [r.to_json() for r in rows],
                                   "timings_seconds": timings, "total_seconds": total, "out": str(out.path)}),
                         indent=2, ensure_ascii=False))
    else:
        print(table)
        print(summary)
    status = raised_status(rows)
    if status:
        print(status[1], file=sys.stderr)
        return status[0]
    return 0 if passed else 1


def _keeper(out, total: int, args):
    """After each check: the rows so far into ``partial.json`` (an interrupted suite keeps them) and a
    progress line with the checks done, the failing rows and the ETA."""
    import threading

    from ..progress import Progress

    lock, rows, finished = threading.Lock(), [], []
    bar = None if args.json else Progress(total, label=f"check {args.suite}", unit="checks", min_interval=0)

    def on_done(name, got, seconds):
        with lock:
            rows.extend(got)
            finished.append(name)
            out.write_json("partial.json", {"checks_done": finished, "of": total,
                                            "results": [r.to_json() for r in rows]})
            if bar:
                failing = sum(not r.passed for r in rows)
                bar.update(len(finished), f"last: {name} ({seconds:.0f} s); {failing} failing row(s)")
    return on_done


def _run_one(check, options, quiet, on_done=None):
    from ..verdicts import failed

    t = time.perf_counter()
    if not quiet:
        print(f"running {check.name} ...", file=sys.stderr, flush=True)
    from ..contracts import CheckResult

    try:
        out = check.run(options)
        if isinstance(out, CheckResult):   # 'CheckResult' object is not iterable, said list() before
            raise _NotRows("run() must return a list of CheckResult rows; it returned one CheckResult (wrap it in "
                           "a list: return [CheckResult(...)])")
        got = list(out)
    except _NotRows as exc:
        got = [failed(check.name, "(check returned no CheckResult)", str(exc))]
    except Exception as exc:  # a check that raises is a failing row, never a crash of the suite
        got = [_raised_row(check.name, exc)]
    wrong = [r for r in got if not isinstance(r, CheckResult)]
    if wrong:  # once an internal error (AttributeError) while the rows were written
        got = [failed(check.name, "(check returned no CheckResult)",
                      f"run() must yield CheckResult rows; it gave {type(wrong[0]).__name__} {wrong[0]!r:.60}")]
    got = [_finite_or_failed(r) for r in got]
    result = check.name, got, round(time.perf_counter() - t, 2)
    if on_done is not None:
        on_done(*result)
    return result


def _raised_row(name, exc):
    """The failing row of a check that raised: where (the innermost frame in a third-party plugin's code, else
    the innermost frame) and the saved traceback, so its author can find the line; ``details["raised_in"]``
    says whose code it was ("plugin" or "flatland"), which sets the command's exit status."""
    from . import _plugin_frame, _save_traceback
    from ..verdicts import failed

    where = _plugin_frame(exc.__traceback__)
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    at = where or (f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?")
    first = str(exc).splitlines()[0] if str(exc) else ""
    row = failed(name, "(check raised)", f"{type(exc).__name__}: {first} — raised at {at} (traceback in "
                                         f"{_save_traceback()})")
    return dataclasses.replace(row, details=dict(row.details, raised_in="plugin" if where else "flatland"))


def raised_status(rows) -> tuple[int, str] | None:
    """(exit status, one stderr line) when a check raised: 3 for a third-party plugin's code (its author's to
    fix), 70 for flatland's own (a bug); None when none did. The rows and results are kept either way."""
    raised = [r for r in rows if r.details.get("raised_in")]
    if not raised:
        return None
    r = raised[0]
    if r.details["raised_in"] == "plugin":
        return 3, f"flatland: plugin error in check {r.name}: {r.details['verdict']}"
    return 70, f"flatland: internal error in check {r.name} (a bug — please report it): {r.details['verdict']}"


class _NotRows(Exception):
    """A check's run() returned something other than rows."""


def _finite_or_failed(row):
    """A row that says PASS with a non-finite prediction or measurement fails: no verdict rests on NaN (a
    plugin's CheckResult(passed=True) with a NaN prediction showed PASS). Built-in rows never do this:
    their verdicts come from ``verdicts.decisive``, which fails a non-finite error."""
    bad = [k for k in ("predicted", "measured") if not _is_finite(getattr(row, k))]
    if not (row.passed and bad):
        return row
    why = (f"the check said PASS with a non-finite {' and '.join(bad)} "
           f"({', '.join(f'{k} = {getattr(row, k)!r}' for k in bad)}): a verdict needs finite numbers")
    return dataclasses.replace(row, passed=False, warnings=list(row.warnings) + [why],
                               details=dict(row.details, verdict=why))


def _is_finite(x) -> bool:
    try:
        return bool(math.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def run_checks(checks, options, jobs: int, quiet: bool = False, on_done=None):
    """[(name, rows, seconds)] in the checks' order; ``jobs`` > 1 runs them in threads; ``on_done(name,
    rows, seconds)`` is called as each check finishes."""
    if jobs == 1:
        return [_run_one(c, options, quiet, on_done) for c in checks]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run_one, c, options, quiet, on_done) for c in checks]
        return [f.result() for f in futures]
