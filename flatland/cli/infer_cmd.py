"""``flatland infer FILE.npz [--model DIR]`` / ``flatland infer --train SWEEP_DIR``: which mechanism made this drift?

With a recording (the ``flatland geometry`` layout: sessions × groups × repeats
× units, optional ``resample``): prints the posterior over the model's
mechanisms and the features that drove it, each beside its Δt = 0 control.
With ``--train``: cuts recordings from every finished run of a sweep that
logged ``responses`` (several sweeps are pooled), matches runs on loss plateau
and drift speed (``--match`` chooses the cues), evaluates
with cross-validation grouped by run (and on held-out tasks), and writes
``model.json``, ``report.md``, ``dataset.parquet`` and figures to ``--model``
(default: the first SWEEP_DIR/infer).
"""
import os


def _list(kind, allow_all=False):
    import argparse

    def parse(text):
        out = []
        for part in text.split(","):
            part = part.strip()
            if allow_all and part == "all":
                out.append(None)
                continue
            try:
                v = kind(part)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s"
                                                 f"{' or all' if allow_all else ''}, got {part!r}") from None
            if not (v >= 0) or v > 1e6:
                raise argparse.ArgumentTypeError(f"expected values in [0, 1e6], got {part!r}")
            out.append(v)
        return tuple(out)
    return parse


def _cues(text):
    import argparse

    from ..errors import UserError
    from ..infer.dataset import check_cues

    try:
        return check_cues(part.strip() for part in text.split(","))
    except UserError:
        raise argparse.ArgumentTypeError(f"expected loss, speed or loss,speed, got {text!r}") from None


def add_parser(sub):
    p = sub.add_parser("infer", help="posterior over the noise/learning rule behind a recording's drift (or --train)",
                       description=__doc__.splitlines()[0])
    p.add_argument("file", nargs="?", metavar="FILE.npz", help="a recording (see `flatland record`)")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the installed model; with --train: "
                   "where to write, default the first SWEEP_DIR/infer)")
    p.add_argument("--key", default="responses", help="name of the responses array (default: responses)")
    p.add_argument("--train", metavar="SWEEP_DIR", nargs="+", help="train and evaluate on the runs of one or more "
                   "sweeps (pooled) instead")
    p.add_argument("--units", type=_list(int, True), default=(50, 100, None),
                   help="units per recording, comma-separated, 'all' for every unit (default 50,100,all)")
    p.add_argument("--sessions", type=_list(int), default=(3, 5, 10), help="sessions per recording (default 3,5,10)")
    p.add_argument("--obs-noise", type=_list(float), default=(0.0, 0.5),
                   help="observation noise levels × unit s.d. (default 0,0.5)")
    p.add_argument("--draws", type=int, default=1, help="recordings per setting and run (default 1)")
    p.add_argument("--start", type=float, default=0.2, help="fraction of each run skipped (default 0.2)")
    p.add_argument("--match", default="loss,speed", type=_cues,
                   help="the easy cues runs are matched on: loss (log loss plateau), speed (drift speed) or both "
                        "(default loss,speed)")
    p.add_argument("--match-per-task", action="store_true",
                   help="match each task on its own region, so a held-out task keeps every mechanism matched there")
    p.add_argument("--no-match", action="store_true", help="do not match runs at all")
    p.add_argument("--bins", type=int, default=0, help="also balance mechanisms in bins cells per cue of the common "
                   "support (default 0: common support only)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds, grouped by run (default 5)")
    p.set_defaults(run=run)


def _train(args) -> int:
    from ..errors import UserError
    from ..infer import Plan, train
    from ..infer.evaluate import recognised_text

    if not 1 <= args.draws <= 100 or not 2 <= args.folds <= 50 or not 0 <= args.bins <= 20:
        raise UserError("--draws must be in [1, 100], --folds in [2, 50], --bins in [0, 20]")
    if any(s is not None and s < 2 for s in args.sessions) or any(u is not None and u < 2 for u in args.units):
        raise UserError("--sessions and --units values must be ≥ 2")
    if not 0 <= args.start < 1:
        raise UserError(f"--start must be a fraction in [0, 1), got {args.start}")
    out = args.model or os.path.join(args.train[0], "infer")
    plan = Plan(units=args.units, sessions=args.sessions, obs_noise=args.obs_noise, draws=args.draws, start=args.start)
    from ..progress import Progress

    bar = Progress(1, label="recordings", unit="runs")     # total set by the first run read

    def progress(done, total, note):
        bar.total = total
        bar.update(done, note)

    sweeps = args.train[0] if len(args.train) == 1 else args.train
    res = train(sweeps, out, plan, matched=not args.no_match, bins=args.bins, folds=args.folds, progress=progress,
                match_on=args.match, match_per_task=args.match_per_task)
    bar.close()
    ev = res["evaluation"]
    f = lambda t: f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"   # noqa: E731
    if res["match"]:
        print(f"matched: {res['match']['kept']} of {res['match']['runs']} runs kept")
    print(f"accuracy (CV grouped by run, {ev.n_runs} runs): {f(ev.model)}; best single-feature rule {f(ev.baseline)}; "
          f"margin {f(ev.margin)}; shuffled labels {f(ev.shuffled)}; chance {ev.chance:.3f}")
    for t, (a, b, c) in ev.held_out_tasks.items():
        print(f"  held-out task {t}: {f(a)} (rule {f(b)}; margin {f(c)}); "
              f"recognised {recognised_text(ev.held_out_recognised.get(t, {}))}")
    print(f"flatland infer: model {res['model']}, report {res['report']}")
    return 0


def _model_line(meta: dict) -> str:
    """What the model was trained on and how well it did, each accuracy named by what was held out."""
    if not meta.get("cv_accuracy"):
        return "model: (no metadata)"
    acc = f"accuracy {meta['cv_accuracy'][0]:.2f} cross-validated with whole runs held out"
    if meta.get("held_out_task_accuracy"):
        acc += f", {meta['held_out_task_accuracy'][0]:.2f} on held-out tasks"
    return f"model: trained on {', '.join(meta.get('tasks', ['?']))} ({meta.get('runs', '?')} runs; {acc})"


def run(args) -> int:
    from ..errors import UserError

    if args.train:
        if args.file:
            raise UserError("give either a recording FILE.npz or --train SWEEP_DIR, not both")
        return _train(args)
    if not args.file:
        raise UserError("give a recording FILE.npz (see `flatland record`) or --train SWEEP_DIR")
    from ..infer import infer_file

    res = infer_file(args.file, args.model, args.key)
    S, G, K, N = res["shape"]
    meta = res["model"].meta
    print(f"{args.file}: {S} sessions × {G} groups × {K} repeats × {N} units; control: "
          f"{'independent resample' if res['resample'] else 'even vs odd repeats'}")
    print(_model_line(meta))
    for what, v, seen in (("sessions", S, meta.get("sessions")), ("units", N, meta.get("units"))):
        if seen and not min(seen) <= v <= max(seen):
            print(f"caution: {v} {what}, outside the {min(seen)}–{max(seen)} the model was trained on")
    for name, v, lo, hi in res["outside"]:
        print(f"caution: {name} = {v:.3g} is outside the training recordings' range [{lo:.3g}, {hi:.3g}] "
              "(1st–99th percentile): the posterior extrapolates")
    print("posterior:")
    for name, p in res["posterior"]:
        print(f"  {p:6.3f}  {name}")
    sig = res["signature"]
    print("drove it (feature: value, control at Δt = 0; drop in the top class's probability without it):")
    for name, c in res["drivers"]:
        print(f"  {name}: {sig.values[name]:.3g} (control {sig.controls[name]:.3g}); {c:+.2f}")
    return 0
