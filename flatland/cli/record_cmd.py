"""``flatland record RUN_DIR --out FILE.npz``: a recording cut from a run, as an experimenter would see it.

Needs a run that logged the ``responses`` metric. Picks ``--sessions`` logged
steps evenly spaced over the window (``--start``: fraction of the run skipped),
a random subset of ``--units``, groups consecutive stimuli into ``--groups``
classes and adds ``--obs-noise`` (× each unit's s.d.; an independent
``resample`` pass is saved with it). The file has the layout ``flatland
geometry`` and ``flatland infer`` read.
"""
import os


def _positive_int(text):
    import argparse
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {v}")
    return v


def _fraction(text):
    import argparse
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= v <= 100:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 100], got {text}")
    return v


def add_parser(sub):
    p = sub.add_parser("record", help="cut a recording (sessions × groups × repeats × units) from a run's logged responses",
                       description=__doc__.splitlines()[0])
    p.add_argument("run_dir", metavar="RUN_DIR", help="a `flatland run` folder that logged the responses metric")
    p.add_argument("--out", required=True, metavar="FILE.npz",
                   help="the recording to write (must not exist; a missing folder above it is created)")
    p.add_argument("--sessions", type=_positive_int, default=5, help="sessions (logged steps), default 5")
    p.add_argument("--units", type=_positive_int, help="units to record, chosen at random (default: all)")
    p.add_argument("--groups", type=_positive_int, help="stimulus classes (default: blocks of ≥ 6 stimuli, ≤ 10)")
    p.add_argument("--obs-noise", type=_fraction, default=0.0, help="observation noise × each unit's s.d. (default 0)")
    p.add_argument("--start", type=_fraction, default=0.2, help="fraction of the run skipped before the first session "
                   "(default 0.2: after the fast fit)")
    p.add_argument("--seed", type=int, default=0, help="seed of the unit choice and the noise (default 0)")
    p.add_argument("--seed-index", type=int, default=0, help="which of the run's seeds (default 0)")
    p.set_defaults(run=run)


def run(args) -> int:
    import io

    import numpy as np

    from ..checkpoint import atomic_write_bytes
    from ..errors import UserError
    from ..infer import RecordingSpec, load_log, make_recording

    if os.path.exists(args.out):
        raise UserError(f"{args.out} exists; choose a new --out (a recording is never overwritten)")
    if not args.out.endswith(".npz"):
        raise UserError(f"--out must name an .npz file, got {args.out!r}")
    spec = RecordingSpec(sessions=args.sessions, units=args.units, groups=args.groups, obs_noise=args.obs_noise,
                         start=args.start, seed=args.seed)
    log = load_log(args.run_dir)
    rec = make_recording(log, spec, args.seed_index)
    buf = io.BytesIO()
    np.savez_compressed(buf, **rec)
    try:
        atomic_write_bytes(args.out, buf.getvalue())
    except OSError as exc:
        raise UserError(f"cannot write {args.out}: {exc}") from None
    S, G, K, N = rec["responses"].shape
    print(f"flatland record: {S} sessions (steps {', '.join(map(str, rec['steps']))}) × {G} groups × {K} repeats × "
          f"{N} units{' + resample' if 'resample' in rec else ''} → {args.out}")
    stimuli = log.values.shape[2]
    if stimuli > G * K:   # consecutive blocks of K stimuli form the groups; the rest fit none
        print(f"  the last {stimuli - G * K} of the run's {stimuli} stimuli are left out ({G} groups of {K}); "
              "--groups chooses another split")
    return 0
