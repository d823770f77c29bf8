"""The ``relu`` check suite: sparsification and its Hessian signature on a reduced network.

Settings (the paper's fast settings, chosen so the whole suite fits in minutes on 2 cores):
the corridor task (T = 150), width 50, float64, 8 seeds batched in one
``jit(vmap(scan))``, lr 0.4. Every condition starts from the same converged
point — 5,000 steps of plain GD from the paper's lazy initialisation — so the
comparisons are "after convergence". Metrics are logged inside the compiled
loop every 500 steps. Per-seed active-unit fractions are noisy (dead units'
weights random-walk and briefly revive), so statistics are seed means with
their standard error over the 8 seeds (s.e. = sd/√8; with 4 seeds a 3-s.e. rule
passes ~3% of null cases through the t tail); "end" means the mean over the
last 10% of logged points.

Checks:
* ``relu-gd-stationary`` — the control: GD, 6×10⁴ more steps (as long as the
  longest treated run): |Δ active units| ≤ 0.01. The active fraction is reported,
  not judged: the loss still falls ×0.4 over these steps and fields narrow a
  little (−0.013 ± 0.002 measured, 8 seeds); the treated checks subtract it.
* ``relu-update-noise-sparsifies`` — gradient noise σ_g = 0.025 (parameter noise
  ησ_g = 0.01), 6×10⁴ steps: the loss reaches its plateau at t_p; the active-unit
  fraction then falls by ≥ 0.2 (and > 3 s.e.) from t_p to the end, by ≥ 0.1 of
  it after 5·t_p ("well after"), while the loss stays on its plateau
  (``phases.loss_plateau``: from t_p on, within every decade of steps the running
  median of the seed-mean loss stays within [½, 2]× of its median over that
  decade, and the run goes on for a decade after t_p).
* ``relu-update-noise-si`` — same runs: the shuffle-corrected mean SI (bits, over
  units active on the training inputs) with rate maps on a probe walk — the
  training walk continued for 15,000 steps, 150 samples a bin — rises from the
  converged start to the last 25% of the run by > 3 s.e., net of the GD
  control's change over the same steps. On the 150 training samples (1.5 a bin)
  neither SI can judge this: raw SI rises from sampling bias as rates sparsen,
  and the shuffle correction removes most of a tuned unit's information (its
  own values scattered over the bins are nearly as informative); both are
  reported beside. Skaggs SI rises whenever units fire in fewer places, so the
  row also reports what the rise is made of (``_si_diagnostics``): the change
  of the units active at both ends, and the end against the start nets with
  every bias lowered to the same active fraction.
* ``relu-label-noise-trace`` — uniform label noise of width 2, 2×10⁴ steps:
  tr H (exact for ReLU) ends ≤ 0.7 of the GD control's tr H at the same step
  (same start), while the relative fall of the active-unit fraction is < ¼ of
  the relative fall of tr H.
* ``relu-adam-sparsifies`` / ``relu-rmsprop-sparsifies`` / ``relu-sed-sparsifies`` —
  no added noise (Adam lr 0.05 and RMSprop with PyTorch's defaults — lr 0.01, decay
  0.99, ε outside the square root, the paper's optimizer — and SED lr 2 with s = 0.1
  per matrix/√rows, each for 6×10⁴ steps, as long as the GD control, so that a
  plateau reached by 6×10³ steps is seen for a decade): judged by the update-noise rule — from the
  learner's own loss plateau t_p to the end, the active fraction falls by ≥ 25%
  of its value at t_p (and > 3 s.e.), net of the GD control's relative fall over
  the same steps (per seed, same start), while the loss stays on its plateau (the
  same ``loss_plateau`` rule) at an end value ≤ 0.1 (the task stays learned;
  update noise's own plateau is ~0.06). SED at lr 5 broke the fit (loss_norm > 0.1
  within 500 steps); at lr 2 it sits at update noise's loss level; at lr 1 the
  fall is ~9% in 4×10⁴ steps. RMSprop collapses the active fraction in its first
  ~2×10³ steps (0.38 at step 500 → 0.15 at 2,000, while its loss moves ×0.86) and
  moves less after, while its loss keeps falling ~×2 a decade, as GD's does. Until
  2026-12-05 the plateau started at the first step within ×1.5 of the end value;
  for a loss decaying like this that start lands at a fixed fraction of the run
  (after RMSprop's collapse; later the longer the run), and the row failed:
  ``examples/recorded/rmsprop-plateau``.
* ``relu-zero-eigenvalues`` — at the end of the update-noise runs, a dense
  ``eigh`` of the full 1,800×1,800 Hessian (``jax.hessian``, no structure used)
  has, in every seed, exactly as many eigenvalues with |λ| ≤ 10·ε·λ_max as the
  predicted exact null dimension Σ_j (d_in + 1 − r_j) + d_out·[r_j = 0] + n_dep, r_j the
  rank of unit j's active inputs (``hessian.exact_null_dimension``: an inactive
  unit's d_in + 1 + d_out parameters, an active unit's input-weight directions
  orthogonal to every input it fires on, and n_dep output-weight directions along
  linear dependencies of the active units' activations — two units firing on one
  and the same input only give d_out − 1; check seed 1 has such a pair, which
  the count missed until 2026-12-05). (d_in + 1 + d_out) × inactive
  units alone is reported beside it, as is the count at the looser P·ε·λ_max,
  which also picks up the near-zero eigenvalues of the units' rescaling symmetry
  (null only at a stationary point, which ReLU GD does not reach here: the loss
  still falls). The tolerance is the round-off scale of a dense symmetric eigensolver; the
  check reports the gap above it (the smallest counted-nonzero eigenvalue in units of ε·λ_max).
"""
from __future__ import annotations

import functools
import time

import numpy as np
import jax
import jax.numpy as jnp

from flatland import Check, CheckResult

WIDTH, SEEDS, LR, LOG_EVERY, CONVERGE = 50, 8, 0.4, 500, 5000
PROBE = 15_000  # probe-walk samples for SI: 150 a bin (the training set has 1.5)
NAMES = ("loss_norm", "active_fraction", "active_units", "si", "si_corrected", "hess_trace")
SI_CONDITIONS = ("update", "gd")  # the SI row's runs also log the probe's SI (~130 ms a log for 8 nets)
CONDITIONS = {
    "gd": ("none", {}, "gd", {}, {"lr": LR}, 60_000),  # the control: as long as the longest treated run
    "update": ("gradient", {"sigma": 0.025}, "gd", {}, {"lr": LR}, 60_000),
    "label": ("uniform-label", {"width": 2.0}, "gd", {}, {"lr": LR}, 20_000),
    "adam": ("none", {}, "adam", {}, {"lr": 0.05}, 60_000),  # every treated run as long as the control
    "rmsprop": ("none", {}, "rmsprop", {"eps_in_sqrt": False}, {"lr": 0.01, "decay": 0.99}, 60_000),  # PyTorch's
    "sed": ("none", {}, "sed", {"per_matrix": True}, {"lr": 2.0, "sigma": 0.1}, 60_000),
}


@functools.lru_cache(maxsize=2)
def _lab(seed: int):
    """Registry, loss, its relu context and the converged starting params (cached per process and seed)."""
    from flatland import as_hyper, assemble, ensemble, make_runner, make_step

    reg = assemble().registry
    loss = reg.create("losses", "corridor", seed=seed, n_hid=WIDTH, probe_samples=PROBE)
    ctx = loss.extras["relu"]
    params = jax.vmap(loss.init)(jax.random.split(jax.random.key(seed), SEEDS))
    gd = reg.create("learners", "gd")
    hyper = {"learner": as_hyper(gd.hyper, {"lr": LR}), "noise": {}}
    run = ensemble(make_runner(make_step(loss, reg.create("noise", "none"), gd), CONVERGE, every=CONVERGE))
    keys = jax.random.split(jax.random.key(seed + 1), SEEDS)
    tr = run(keys, params, jax.vmap(lambda p: ())(params), hyper, 0)
    return reg, loss, ctx, tr.params


@functools.lru_cache(maxsize=8)
def _condition(seed: int, name: str):
    """Run one condition from the converged start; records (S, n_logs) per metric, start values (S,)."""
    from flatland import as_hyper, ensemble, make_runner, make_step

    from . import metrics as M

    reg, loss, ctx, start = _lab(seed)
    record = M.make_record(ctx, NAMES + (("si_probe_corrected",) if name in SI_CONDITIONS else ()))
    noise_name, nh, learner_name, lopts, lh, steps = CONDITIONS[name]
    noise, learner = reg.create("noise", noise_name), reg.create("learners", learner_name, **lopts)
    hyper = {"learner": as_hyper(learner.hyper, lh), "noise": as_hyper(noise.hyper, nh)}
    state = jax.vmap(lambda p: learner.init(p, hyper["learner"]))(start)
    run = ensemble(make_runner(make_step(loss, noise, learner), steps, every=LOG_EVERY, record=record))
    t0 = time.perf_counter()
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed + 2), list(CONDITIONS).index(name)), SEEDS)
    tr = run(keys, start, state, hyper, 0)
    recs = {k: np.asarray(v) for k, v in tr.records.items()}
    first = {k: np.asarray(v) for k, v in jax.vmap(lambda p: record(p, (), hyper))(start).items()}
    return {"records": recs, "start": first, "steps": LOG_EVERY * (np.arange(steps // LOG_EVERY) + 1),
            "params": tr.params, "start_params": start, "diverged": np.asarray(tr.diverged_at), "seconds": time.perf_counter() - t0,
            "ctx": ctx, "loss": loss}


def _mse(x):
    x = np.asarray(x, float)
    return float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(x.size))


def _end(rec, frac=0.1):
    n = max(1, int(round(frac * rec.shape[1])))
    return rec[:, -n:].mean(1)


def _common(c):
    return {"seconds": round(c["seconds"], 1), "diverged_at": c["diverged"].tolist()}


def check_gd(opts):
    c = _condition(opts.seed, "gd")
    r = c["records"]
    d_au = _end(r["active_units"]) - c["start"]["active_units"]
    d_af = _end(r["active_fraction"]) - c["start"]["active_fraction"]
    (m_au, se_au), (m_af, se_af) = _mse(d_au), _mse(d_af)
    # judged on active units (the sparsification statistic of the update-noise check); the active
    # fraction (inputs × units) keeps narrowing slowly while the loss still falls, and the treated
    # checks subtract this control's change instead
    ok = abs(m_au) <= 0.01 and (c["diverged"] < 0).all()
    return [CheckResult("relu-gd-stationary", "seed-mean change of the fraction of active units over 6e4 GD steps "
                        f"after convergence ({SEEDS} seeds, s.e. over seeds)", 0.0, m_au, se_au,
                        "|Δ active units| ≤ 0.01 (Δ active fraction reported; treated checks subtract it)", bool(ok),
                        details=_common(c) | {"delta_active_fraction": m_af, "delta_active_fraction_se": se_af,
                                              "loss_norm_end": _mse(_end(r["loss_norm"]))[0]})]


LEARNED = 0.1  # a plateau counts as "the task learned" when loss_norm ≤ this (≥ 90% of target variance explained)
PLATEAU_RULE = "in every decade of steps after t_p within [½, 2]× of its level there, held ≥ a decade"


def _plateau(steps, records):
    """The learner's own loss plateau, from the seed-mean loss: (index of t_p, end loss, the plateau is
    reached and held for a decade, task still learned). The plateau is ``phases.loss_plateau``'s (one
    rule for the checks and the phase labels: from t_p on, in every decade of steps the loss stays within
    [½, 2]× of its level there); "learned" means the end loss_norm ≤ ``LEARNED``. Update noise and the noise-free
    learners are judged by this one rule."""
    from .phases import loss_plateau
    p = loss_plateau(steps, records["loss_norm"].mean(0))
    return p["index"], p["level"], p["reached"], p["level"] <= LEARNED


def check_update(opts):
    c = _condition(opts.seed, "update")
    r, steps = c["records"], c["steps"]
    ip, loss_end, reached, learned = _plateau(c["steps"], r)
    t_p = int(steps[ip])
    late = int(np.searchsorted(steps, 5 * t_p))
    au = r["active_units"]
    drop = au[:, ip] - _end(au)
    drop_late = au[:, min(late, au.shape[1] - 1)] - _end(au)
    (m, se), (ml, sel) = _mse(drop), _mse(drop_late)
    ok = m >= 0.2 and m > 3 * se and ml >= 0.1 and reached and learned and (c["diverged"] < 0).all()
    res = [CheckResult("relu-update-noise-sparsifies",
                       "seed-mean fall of the fraction of active units from the loss plateau t_p to the end "
                       f"(gradient noise σ_g=0.025, lr 0.4, 6e4 steps, {SEEDS} seeds, s.e. over seeds)", 0.2, m, se,
                       "fall ≥ 0.2 and > 3 s.e.; fall after 5·t_p ≥ 0.1; seed-mean loss on its plateau from t_p "
                       f"({PLATEAU_RULE}), ending ≤ {LEARNED} (task learned)",
                       bool(ok), details=_common(c) | {
                           "t_plateau": t_p, "fall_after_5tp": ml, "fall_after_5tp_se": sel,
                           "loss_norm_end": float(loss_end), "loss_on_plateau": reached,
                           "active_units_start": _mse(c["start"]["active_units"])[0],
                           "active_units_end": _mse(_end(au))[0],
                           "active_fraction_end": _mse(_end(r["active_fraction"]))[0]})]
    res.append(_si_row(c, _condition(opts.seed, "gd"), _si_diagnostics(c)))
    return res


def _si_diagnostics(c):
    """What the SI rise is made of, per seed (reported, not judged), from the start and end params:

    * ``survivors``: the change of the probe's corrected SI of the units active at both ends;
    * ``threshold_matched``: the end's corrected probe SI minus that of the start net with every bias
      lowered by one δ, the smallest (bisection) that brings its active fraction down to the end's (a step
      function: SI still varies a little across the step's width). Lowering a threshold
      narrows every field, which alone raises Skaggs SI: this asks whether the noise did more or less
      than that at the same sparsity."""
    from .metrics import active_fraction, probe_unit_si_corrected

    ctx = c["ctx"]
    start, end = c["start_params"], c["params"]
    # per unit, the probe's corrected SI (NaN where inactive on the training inputs); its nanmean over units
    # is the si_probe_corrected metric
    per_unit = jax.jit(jax.vmap(lambda p: probe_unit_si_corrected(p, ctx)))
    a, b = np.asarray(per_unit(start)), np.asarray(per_unit(end))
    both = np.isfinite(a) & np.isfinite(b)
    survivors = np.array([np.mean((b - a)[k][both[k]]) if both[k].any() else np.nan for k in range(len(a))])
    frac = jax.jit(jax.vmap(lambda p, d: active_fraction(dict(p, b=p["b"] - d[..., None]), ctx)))
    target = np.asarray(frac(end, jnp.zeros(len(a))))
    lo, hi = np.zeros(len(a)), np.full(len(a), 10.0)
    for _ in range(40):                      # the active fraction falls as every bias is lowered
        mid = (lo + hi) / 2
        above = np.asarray(frac(start, jnp.asarray(mid))) > target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    matched = np.nanmean(np.asarray(per_unit(dict(start, b=start["b"] - jnp.asarray(hi)[:, None]))), axis=1)
    ends = np.nanmean(b, axis=1)
    (ms, ses), (mt, set_) = _mse(survivors), _mse(ends - matched)
    return {"survivors_change": ms, "survivors_change_se": ses, "threshold_matched_si": _mse(matched)[0],
            "end_minus_threshold_matched": mt, "end_minus_threshold_matched_se": set_}


def _si_row(c, g, diagnostics=None):
    """SI rises: judged on the probe walk's shuffle-corrected SI, net of the GD control's change per seed
    (both runs start from the same nets, so seed k's control is seed k's start)."""
    def delta(cond, name):
        return _end(cond["records"][name], 0.25) - cond["start"][name]
    if c["records"]["si_probe_corrected"].shape != g["records"]["si_probe_corrected"].shape:
        raise ValueError("the SI row needs the GD control as long as the update-noise run (same seeds, same logs)")
    net = delta(c, "si_probe_corrected") - delta(g, "si_probe_corrected")
    m, se = _mse(net)
    return CheckResult("relu-update-noise-si",
                       "seed-mean change of the mean shuffle-corrected Skaggs SI over active units, rate maps on a "
                       f"probe walk of {PROBE} samples (the training walk continued), last 25% of the run vs the "
                       f"converged start, net of the GD control's change ({SEEDS} seeds, s.e. over seeds)", 0.0, m, se,
                       "net increase > 3 s.e.", bool(m > 3 * se),
                       details={"si_probe_corrected_start": _mse(c["start"]["si_probe_corrected"])[0],
                                "si_probe_corrected_end": _mse(_end(c["records"]["si_probe_corrected"], 0.25))[0],
                                "gd_control_change": _mse(delta(g, "si_probe_corrected"))[0],
                                "gd_control_change_se": _mse(delta(g, "si_probe_corrected"))[1],
                                # the training samples' statistics: 150 samples in 100 bins
                                "delta_si_train_corrected": _mse(delta(c, "si_corrected"))[0],
                                "delta_si_train_corrected_se": _mse(delta(c, "si_corrected"))[1],
                                "delta_si_train_raw": _mse(delta(c, "si"))[0],
                                "delta_si_train_raw_se": _mse(delta(c, "si"))[1]} | (diagnostics or {}))


def check_label(opts):
    """tr H under label noise against the GD control run from the same converged start, as long."""
    c, g = _condition(opts.seed, "label"), _condition(opts.seed, "gd")
    r = c["records"]
    n = r["hess_trace"].shape[1]  # the control's record at the same step
    ratio = _end(r["hess_trace"]) / _end(g["records"]["hess_trace"][:, :n])
    au_rel = 1 - _end(r["active_units"]) / c["start"]["active_units"]
    (m, se), (ma, sea) = _mse(ratio), _mse(au_rel)
    ok = m <= 0.7 and m + 3 * se < 1 and ma < 0.25 * (1 - m) and (c["diverged"] < 0).all()
    return [CheckResult("relu-label-noise-trace",
                        "seed-mean ratio tr H(label noise)/tr H(GD control) at the end, same start and steps, "
                        f"uniform label noise of width 2 (lr 0.4, 2e4 steps, {SEEDS} seeds, s.e. over seeds)", 0.7, m, se,
                        "ratio ≤ 0.7 (and 3 s.e. below 1) and relative fall of active units < ¼ of the fall of tr H",
                        bool(ok), ratio=m, ratio_stderr=se,
                        details=_common(c) | {"active_units_relative_fall": ma, "active_units_relative_fall_se": sea,
                                              "trace_start": _mse(c["start"]["hess_trace"])[0],
                                              "trace_gd_control_end": _mse(_end(g["records"]["hess_trace"][:, :n]))[0],
                                              "trace_end": _mse(_end(r["hess_trace"]))[0],
                                              "active_units_end": _mse(_end(r["active_units"]))[0]})]


def _check_adaptive(name, label):
    def run(opts):
        c = _condition(opts.seed, name)
        r = c["records"]
        ip, loss_end, reached, learned = _plateau(c["steps"], r)
        n = r["active_fraction"].shape[1]
        g = _condition(opts.seed, "gd")  # same start and seeds' params; its change is subtracted per seed
        ga = g["records"]["active_fraction"][:, :n]
        control = 1 - _end(ga) / ga[:, ip]
        rel = 1 - _end(r["active_fraction"]) / r["active_fraction"][:, ip] - control
        d_au = _end(r["active_units"]) - r["active_units"][:, ip]
        (m, se), (ma, sea) = _mse(rel), _mse(d_au)
        ok = m >= 0.25 and m > 3 * se and reached and learned and (c["diverged"] < 0).all()
        why = [w for w, bad in (("fall < 0.25 or ≤ 3 s.e.", not (m >= 0.25 and m > 3 * se)),
                                ("the loss did not stay on a plateau for a decade of steps (it left [½, 2]× of its level within a decade)",
                                 not reached),
                                (f"plateau loss_norm {loss_end:.3g} > {LEARNED}: the task is no longer learned (< 90% of the "
                                 "targets' variance explained)", not learned),
                                ("a chain diverged", not (c["diverged"] < 0).all())) if bad]
        return [CheckResult(f"relu-{name}-sparsifies",
                            f"seed-mean relative fall of the active fraction under {label} without added noise, from "
                            f"its loss plateau t_p = {int(c['steps'][ip])} to the end of {int(c['steps'][-1])} steps, "
                            f"net of the GD control's over the same steps ({SEEDS} seeds, s.e. over seeds)", 0.25, m, se,
                            "relative fall ≥ 0.25 and > 3 s.e.; seed-mean loss on its plateau from t_p "
                            f"({PLATEAU_RULE}), ending ≤ {LEARNED} (task learned)", bool(ok),
                            details=_common(c) | {"delta_active_units": ma, "delta_active_units_se": sea,
                                                  "t_plateau": int(c["steps"][ip]), "loss_on_plateau": reached,
                                                  "gd_control_relative_fall": _mse(control)[0],
                                                  "loss_norm_start": _mse(c["start"]["loss_norm"])[0],
                                                  "loss_norm_end": loss_end,
                                                  "verdict": "; ".join(why) or "within tolerance"})]
    return run


ROUNDOFF = 10  # zero tolerance of the exact count: |λ| ≤ ROUNDOFF·ε₆₄·λ_max (a dense eigh's round-off scale)


def check_zero_eigs(opts):
    from .hessian import exact_null_dimension
    from .network import flatten, unflatten
    c = _condition(opts.seed, "update")
    loss, ctx = c["loss"], c["ctx"]
    spec = ctx["spec"]
    hess = jax.jit(jax.hessian(lambda th: loss(unflatten(th, spec))))
    eps = np.finfo(np.float64).eps
    rows = []
    for s in range(SEEDS):
        p = jax.tree_util.tree_map(lambda a: np.asarray(a[s]), c["params"])
        e = np.sort(np.abs(np.linalg.eigvalsh(np.asarray(hess(flatten(p))))))
        lmax = float(e[-1])
        n_zero = int(np.sum(e <= ROUNDOFF * eps * lmax))
        predicted = exact_null_dimension(p, ctx["X"], ctx["Y"], spec)
        inactive = int(np.sum(~np.asarray((ctx["X"] @ p["W"].T + p["b"]) > 0).any(0)))
        rows.append({"seed": s, "n_zero": n_zero, "predicted": predicted,
                     "inactive_units_times_per_unit": spec.per_unit * inactive,
                     "n_zero_at_P_eps": int(np.sum(e <= spec.n_params * eps * lmax)),
                     "largest_zero_over_eps_lmax": float(e[n_zero - 1] / (eps * lmax)) if n_zero else 0.0,
                     "smallest_nonzero_over_eps_lmax": float(e[n_zero] / (eps * lmax))})
    worst = max(abs(r["n_zero"] - r["predicted"]) for r in rows)
    return [CheckResult("relu-zero-eigenvalues",
                        f"max over {SEEDS} seeds of |#zero eigenvalues − predicted exact-null dimension| of the dense "
                        f"full Hessian (eigh, |λ| ≤ {ROUNDOFF}·ε·λmax), end of the update-noise runs; predicted "
                        "Σ_units (d_in+1 − rank of its active inputs) + d_out per inactive unit + output-weight "
                        "directions along dependent activations",
                        0.0, float(worst), 0.0, "= 0 in every seed", worst == 0, details={"per_seed": rows})]


CHECKS = {
    "relu-gd-stationary": (lambda: Check("relu-gd-stationary", check_gd, "relu"),
                           "relu: plain GD after convergence leaves the active-unit fraction unchanged"),
    "relu-update-noise": (lambda: Check("relu-update-noise", check_update, "relu"),
                          "relu: update (gradient) noise sparsifies after the loss plateau and raises SI"),
    "relu-label-noise-trace": (lambda: Check("relu-label-noise-trace", check_label, "relu"),
                               "relu: label noise lowers tr H while active units fall much less"),
    "relu-adam-sparsifies": (lambda: Check("relu-adam-sparsifies", _check_adaptive("adam", "Adam lr 0.05"), "relu"),
                             "relu: Adam sparsifies without added noise"),
    "relu-rmsprop-sparsifies": (lambda: Check("relu-rmsprop-sparsifies",
                                              _check_adaptive("rmsprop", "RMSprop (PyTorch's defaults: lr 0.01, "
                                                              "decay 0.99, ε outside the root)"), "relu"),
                                "relu: RMSprop sparsifies without added noise"),
    "relu-sed-sparsifies": (lambda: Check("relu-sed-sparsifies",
                                          _check_adaptive("sed", "SED lr 2, s 0.1 per matrix/√rows"), "relu"),
                            "relu: SED sparsifies without added noise"),
    "relu-zero-eigenvalues": (lambda: Check("relu-zero-eigenvalues", check_zero_eigs, "relu"),
                              "relu: #zero Hessian eigenvalues = exact null directions of inactive and partly active units"),
}
