"""``flatland check --loss/--residuals ...``: check the theory on the user's own valley.

From the user's expression, ``flatland.theory`` gives the Problem, the point on Γ
(projected), the prediction and its regime warnings; the JAX loss for the
simulator is lambdified from the same SymPy expressions (``jax_function``), so
simulation and theory read one formula. The run is batches of ``chains``
independent chains (one compilation, reused): after each batch the chains so
far are pooled and the run stops once 3 s.e. of the drift ratio fit inside the
tolerance, or at the step budget — so the answer is decisive where the
signal-to-noise allows and the command never hangs; chains that wander so
far that the prediction where they were is not the point's get a shorter run
(:func:`run_near_point`). ``--chains``/``--steps`` fix one batch of exactly
that size instead.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from typing import Optional

import numpy as np

from .errors import UserError
from .estimators import finite_chains, mean_se, ratio_along
from .progress import Progress
from .verdicts import decisive, drift_ratio

TOLERANCE = 0.02
DEFAULT_CHAINS = 4096
MAX_BATCHES = 8
MAX_CHAIN_STEPS = 1.5e8
SHORTEN = 4        # times an adaptive run may halve its burn-in and steps to measure near the point
MIN_CHUNK = 50     # the plan's short chunk (steps per compiled scan)
RECORD_EVERY = 10  # steps between samples of the projected point's step E[ΔΦ|θ] (~independent samples)  # the budget of an adaptive run, all batches together


@dataclasses.dataclass
class Plan:
    chains: int
    steps: int
    burn: int
    chunk: int
    adaptive: bool
    shorten: bool = False   # may be rerun shorter (adaptive, and neither --steps nor --burn given)
    note: str = ""          # what the plan had to cut (a burn-in capped by the budget), for the warnings


def relaxation_steps(eigenvalues, eta_eff: float) -> float:
    """Steps for the slowest normal direction to relax: 1/(ηλ_min(2 − ηλ_min)) (≥ 1)."""
    lam = np.asarray([l for l in eigenvalues if l > 1e-9 * max(max(eigenvalues), 1e-300)])
    if lam.size == 0:
        return 1.0
    x = eta_eff * lam
    return float(max(1.0, np.max(1.0 / (x * np.clip(2 - x, 1e-6, None)))))


def plan(prediction, eta_eff: float, chains: Optional[int], steps: Optional[int], burn: Optional[int]) -> Plan:
    """Run sizes from the normal relaxation time τ: burn-in 10τ, batches of 40τ steps (100–2000).

    The burn-in is capped at half the budget (``MAX_CHAIN_STEPS``) per batch: near a degenerate point
    λ_min → 0 and 10τ grew without bound (λ = 10⁻⁴: 4·10⁹ chain-steps of burn-in, a check still running
    after 13 minutes). The chains start in the point's linearised stationary law, so a shorter burn-in
    only shortens the settling of the slow direction; the plan says so."""
    tau = relaxation_steps(prediction.eigenvalues, eta_eff)
    chunk = 100 if tau < 50 else 500
    rnd = lambda n: int(max(chunk, math.ceil(n / chunk) * chunk))
    n_chains = int(chains or DEFAULT_CHAINS)
    T = rnd(min(max(40 * tau, 200), 2000)) if steps is None else rnd(steps)
    B = rnd(max(10 * tau, 100)) if burn is None else (0 if burn == 0 else rnd(burn))
    note = ""
    cap = rnd(MAX_CHAIN_STEPS / 2 / n_chains - chunk)
    if burn is None and B > cap:
        note = (f"burn-in capped at {cap:,} steps, the budget's half (10 relaxation times of the slowest normal "
                f"direction would be {rnd(10 * tau):,}: a near-degenerate point); --burn sets it")
        B = cap
    return Plan(chains=n_chains, steps=T, burn=B, chunk=chunk, adaptive=chains is None and steps is None,
                shorten=chains is None and steps is None and burn is None, note=note)


def pooled(runs, attr):
    xs = [getattr(r, attr) for r in runs]
    return None if xs[0] is None else np.concatenate([x[0] for x in xs], axis=0)


def summary(measured, pred0, observable, tol):
    """Pooled estimates over all batches (``Lab.Measured`` list) → the JSON fields of the check."""
    runs = [m.run for m in measured]
    rb = pooled(runs, "rb")
    raw = pooled(runs, "raw")
    if measured[0].no_prediction:
        meas = rb if rb is not None else raw
        m, se = mean_se(meas)
        out = {"measured": m.tolist(), "stderr": se.tolist(), "raw_measured": mean_se(raw)[0].tolist(),
               "raw_stderr": mean_se(raw)[1].tolist(), "tolerance": tol, "passed": False,
               "estimator": "rao-blackwell" if rb is not None else "raw displacement",
               "verdict": f"no prediction: {measured[0].no_prediction}", **chains_were(runs, pred0.point, tol)}
        if observable is not None:
            om = pooled(runs, "obs_rb")
            om = om if om is not None else pooled(runs, "obs_raw")
            out["observable_measured"], out["observable_stderr"] = (float(v) for v in mean_se(om))
        return out
    pf = np.concatenate([r.predicted_step("finite_eta")[0] for r in runs])  # along Γ plus n_curv: whole vector
    pl = np.concatenate([r.predicted_step("leading")[0] for r in runs])
    phi_rb, raw_phi = pooled(runs, "phi_rb"), pooled(runs, "raw_phi")  # the projected point's step: whole vector
    meas = phi_rb if phi_rb is not None else raw_phi
    estimator = "rao-blackwell, projected point" if phi_rb is not None else "raw displacement of the projected point"
    keep = finite_chains(meas, pf, pl)     # drift_ratio leaves out (and names) the same chains
    m, se = mean_se(meas[keep])
    normal = np.zeros(len(pred0.point)) if pred0.drift_normal is None else np.asarray(pred0.drift_normal)
    out = {
        "predicted": pf[keep].mean(0).tolist(), "predicted_leading": pl[keep].mean(0).tolist(),
        "predicted_at_point": (np.asarray(pred0.drift_finite_eta) + normal).tolist(), "measured": m.tolist(),
        "stderr": se.tolist(), "estimator": estimator, "raw_measured": mean_se(raw)[0].tolist(),
        "raw_stderr": mean_se(raw)[1].tolist(), "tolerance": tol,
    }
    if rb is not None:  # the ambient mean step along the prediction, for comparison (its normal part is noise)
        out["ambient_step_ratio"] = ratio_along(rb, pf)["ratio"]
    if pred0.is_zero(pf.mean(0)):  # zero predicted drift (no noise, or terms that cancel): 0 within 3 s.e.
        ok = bool(np.all(np.abs(m) <= 3 * se + 1e-300) or pred0.is_zero(m))  # round-off of the rule's size
        out["verdict"] = "zero drift predicted; measured " + ("consistent with 0" if ok else "not 0 within 3 s.e.")
        if not np.any(raw[np.all(np.isfinite(raw), axis=1)]):  # no chain moved at all: a check that cannot fail
            ok = False
            out["verdict"] = ("inconclusive: no chain moved (every step was exactly 0: the learner and the noise "
                              "add nothing at this point), so zero drift was not tested; give the noise a scale "
                              "> 0, or start where the learner moves")
        out.update(ratio=float("nan"), ratio_stderr=float("nan"), across_fraction=float("nan"),
                   across_stderr=float("nan"))
    else:  # the one verdict rule, on the whole vector
        vis = [r.visited for r in runs if r.visited is not None]
        row = drift_ratio("user-valley", meas, pf, pl, tol=tol, estimator=estimator,
                          variables=measured[0].problem.variables, at_point=out["predicted_at_point"],
                          visited={k: v[0] for k, v in vis[0].items()} if vis else None,
                          tangent_basis=pred0.tangent_basis)
        out["prediction_shift_from_point"] = row.details["prediction_shift_from_point"]
        if row.details["left_out_chains"]:
            out["left_out_chains"] = row.details["left_out_chains"]
            out["left_out_warning"] = row.warnings[-1]
        if "visited" in row.details:
            out["visited_first_batch"] = row.details["visited"]
        carried = few_chains_carry(pf[keep], tol)
        if carried:
            out["few_chains_warning"] = carried
        ok = row.passed
        out.update(ratio=row.ratio, ratio_stderr=row.ratio_stderr, ratio_to_leading=row.details["ratio_to_leading"],
                   across_fraction=row.details["across_fraction"], across_stderr=row.details["across_stderr"],
                   **{k: row.details[k] for k in ("tangent_share", "tangent_ratio", "tangent_ratio_stderr",
                                                  "tangent_across", "tangent_across_stderr") if k in row.details},
                   verdict=row.details["verdict"], along={
                       "statistic": row.statistic, "axis": row.details["axis"], "predicted": row.predicted,
                       "leading": row.leading, "measured": row.measured, "stderr": row.stderr,
                       "tolerance": row.tolerance})
    out["passed"] = bool(ok)
    if observable is not None:
        out.update(observable_summary(runs, tol, pred0))
    audit = next((r.moments_audit for r in runs if r.moments_audit), None)
    if audit:   # the Rao–Blackwellised estimates followed a false declaration: neither verdict tested anything
        out.update(moments_audit=audit, passed=False, verdict=f"inconclusive: {audit} ({out['verdict']})")
        if observable is not None:
            out.update(observable_passed=False, observable_verdict=f"inconclusive: {audit}")
    return out


#: the share of chains, farthest from the median prediction, whose removal should not move the mean prediction
FEW_CHAINS = 0.01


def few_chains_carry(pf: np.ndarray, tol: float) -> str | None:
    """A warning when the 1% of chains whose predicted step (along its mean) lies farthest from the median
    move the mean prediction by more than ``tol``: a few chains went where the drift is far larger — near
    ηλ = 2, where the finite-η drift diverges as 1/(2 − ηλ), or near a rank drop — so the mean prediction of
    this run is carried by them and changes from one run to the next by more than its standard error shows."""
    axis = pf.mean(0)
    if not np.linalg.norm(axis) > 0 or len(pf) < 2 / FEW_CHAINS:
        return None
    p = pf @ (axis / np.linalg.norm(axis))
    far = max(1, int(FEW_CHAINS * len(p)))
    rest = np.argsort(np.abs(p - np.median(p)))[:-far]
    shift = abs(p.mean() - p[rest].mean()) / abs(p.mean())
    if not shift > tol:
        return None
    return (f"a few chains carry the prediction: leaving out the {far} of {len(p)} farthest from the median moves "
            f"its mean by {shift:.1%} (tolerance {tol:.0%}); they went where the predicted drift is far larger "
            "(near ηλ = 2, where the finite-η drift diverges, or near a rank drop), so this average changes from "
            "run to run by more than its standard error says; lower --sigma or --eta, or shorten --steps, to keep "
            "the chains nearer the point")


def sigma_hint(sigma: float, shift: float, tol: float) -> str:
    """What --sigma would keep the chains near the point: their spread along Γ, and with it the shift of the
    averaged prediction, grows as σ² × (burn-in + steps) (measured on xyz = 1: 2.6% → 9.8% from σ = 0.01 to
    0.02, and 9.8% → 5.1% from 100 + 100 to 50 + 50 steps), so σ·√(tol / 2·shift) brings it to ~tol/2."""
    return (f"the chains' movement along Γ (diffusion and drift), and with it the {shift:.1%} shift of the "
            f"prediction, grows as σ² × (burn-in + steps): --sigma {sigma * math.sqrt(tol / (2 * shift)):.2g} "
            f"should bring it to about {tol / 2:.0%}")


def chains_hint(result: dict, tol: float, steps: int, burn: int) -> str | None:
    """What run would decide a verdict that was inconclusive for precision: the standard errors fall as
    1/√chains, so 2 × (3 s.e./tol)² times the chains at the same length brings 3 s.e. to 0.7 × tol (at
    1.2× a seed 2.5 s.e. from the 10-seed mean failed "off by 0.0205"; given explicitly: --chains alone
    fixes the plan and runs its full length, which can move the chains farther, as an audit found)."""
    parts = [result.get(k) for k in ("ratio_stderr", "across_stderr", "tangent_ratio_stderr", "tangent_across_stderr")]
    worst = max((3 * se / tol for se in parts if se is not None and math.isfinite(se)), default=0.0)
    if (result.get("passed") or worst <= 1 or "inconclusive: 3 s.e." not in str(result.get("verdict", ""))
            or result.get("moments_audit")):   # more chains cannot mend a declaration the steps contradict
        return None
    chains = int(math.ceil(result["chains"] * 2 * worst ** 2 / 256) * 256)
    return (f"too few chains to decide: 3 s.e. is {worst:.2g}× the tolerance, and the standard errors fall as "
            f"1/√chains — --chains {chains} --steps {steps} --burn {burn} (this run's length) should decide it")


def chains_were(runs, point, tol) -> dict:
    """Where the chains were over the measurement (5/50/95% of θ at its start and end), and a warning when
    the median left the point by more than ``tol`` of |point|: without a prediction nothing else says that
    a drift "at the point" was measured elsewhere (RMSprop sent every chain to the origin during burn-in)."""
    start = np.concatenate([r.start[0] for r in runs], axis=0)
    end = start + np.concatenate([r.raw[0] for r in runs], axis=0) * runs[0].settings["steps"]
    q = {f"chains_{when}": {f"q{int(p * 100):02d}": np.quantile(x, p, axis=0).tolist() for p in (0.05, 0.5, 0.95)}
         for when, x in (("start", start), ("end", end))}
    point = np.asarray(point, float)
    med = [np.asarray(q[f"chains_{w}"]["q50"]) for w in ("start", "end")]
    gone = max(float(np.linalg.norm(x - point)) for x in med)
    scale = float(np.linalg.norm(point)) or 1.0
    if gone > tol * scale:
        q["where_warning"] = (f"the chains were not at the point: their median went from {_fmt(med[0])} to "
                              f"{_fmt(med[1])} over the measurement (the point {_fmt(point)}, {gone / scale:.1%} of "
                              "its size away), so the drift measured is theirs there: this learner and noise carry "
                              "them away within the run; shorten --burn/--steps or lower --sigma/--eta to measure "
                              "nearer the point")
    return q


def _fmt(v) -> str:
    return "[" + ", ".join(f"{x:.3g}" for x in np.ravel(v)) + "]"


def observable_summary(runs, tol, pred0=None):
    """E[Δc]: measured vs predicted with and without the Itô term.

    Two Rao–Blackwellised estimators of the long-run drift of c are unbiased: the change of c at the
    projected point Φ(θ) and the change at θ (with its Itô term) — they differ by a bounded stationary
    fluctuation. Their precision depends on the observable: at θ, an observable with a normal gradient
    also carries the normal fluctuations (x + y on xy = 1: s.e. 1.6× the prediction); at Φ(θ), one with
    a tangent gradient pays for the projection's noise (x² − y² there: 10× the s.e. at θ). The one with
    the smaller standard error is judged; both are reported. Without a prediction only the change at θ
    (or the raw change) is there.
    Pass rule: |measured − predicted| ≤ tol × max(|predicted|, |Itô term|), 3 s.e. inside it; where both
    are 0 up to round-off (``pred0.observable_is_zero``: c constant on Γ under a noise without tangent
    diffusion), the measurement must be 0 within 3 s.e., as for a zero drift (that tolerance was round-off).
    """
    candidates = [(pooled(runs, "obs_projected"), "rao-blackwell, at the projected point Φ(θ)"),
                  (pooled(runs, "obs_rb"), "rao-blackwell, at θ"), (pooled(runs, "obs_raw"), "raw change at θ")]
    candidates = [(v, w) for v, w in candidates if v is not None]
    both = {w: [float(x) for x in mean_se(v)] for v, w in candidates[:2]}
    meas, where = min(candidates[:2], key=lambda c: float(mean_se(c[0])[1]))
    cat = lambda k: np.concatenate([r.pred[k][0] for r in runs])
    pf, pl = cat("observable_finite_eta"), cat("observable_leading")
    wo, ito = cat("observable_without_ito_finite_eta"), cat("observable_ito")
    m, se = mean_se(meas)
    diff, dse = mean_se(meas - pf)
    scale = max(abs(pf.mean()), abs(ito.mean()), 1e-300)
    ok, why = decisive(float(diff), float(dse), tol * scale)
    if pred0 is not None and pred0.observable_is_zero(float(pf.mean())) and pred0.observable_is_zero(float(ito.mean())):
        ok = bool(abs(m) <= 3 * se or pred0.observable_is_zero(float(m)))
        why = "zero predicted (0 up to round-off); measured " + ("consistent with 0" if ok else "not 0 within 3 s.e.")
    R = ratio_along(meas, pf)
    return {"observable_predicted": float(pf.mean()), "observable_predicted_leading": float(pl.mean()),
            "observable_predicted_without_ito": float(wo.mean()), "observable_ito_term": float(ito.mean()),
            "observable_measured": float(m), "observable_stderr": float(se), "observable_estimator": where,
            "observable_estimators": both,
            "observable_ratio": R["ratio"],
            "observable_ratio_stderr": R["ratio_stderr"], "observable_passed": bool(ok), "observable_verdict": why,
            "observable_tolerance": f"|measured − predicted| ≤ {tol:.0%} × max(|predicted|, |Itô term|) "
                                    f"= {tol * scale:.3g}, 3 s.e. inside it"}


def check_divergence(run, prediction):
    if run.n_diverged:
        first = int(run.diverged_at[run.diverged_at >= 0].min())
        why = ("GD is unstable there (ηλ_max ≥ 2)" if prediction.eta_lambda_max >= 2 else
               "GD alone is stable there, so the noise's or the learner's own kicks threw chains out (large or "
               "heavy-tailed steps, e.g. a probe of stochastic error descent on a steep loss), or the loss is not "
               "finite where they went (a loss defined on part of the space only, such as log or sqrt of a "
               "quantity that turns negative)")
        raise UserError(
            f"the run diverged: {run.n_diverged} of {run.diverged_at.size} chains became non-finite (first at step "
            f"{first}); ηλ_max = {prediction.eta_lambda_max:.3g} at the start point: {why} — lower --eta or --sigma")


def run_near_point(lab, loss, noise, learner, grid, point, pl: Plan, seed, problem, law, observable, prediction,
                   tol):
    """:func:`run_batches`, and for an adaptive plan whose chains measured elsewhere — the prediction where
    they were differs from the one at the point by more than ``tol`` — again with half the burn-in and steps,
    at most ``SHORTEN`` times (the chains start in the point's linearised stationary law, so a shorter
    burn-in is sound). The choice looks only at where the chains were, never at the measured drift, and is
    made after every batch, so a plan is dropped as soon as its chains measured elsewhere (more batches of
    it only cost time: a 5-D check ran 2.5 minutes, most of it in batches of the two plans it shortened).
    Returns (runs, the plan that ran, a note saying what was shortened or None)."""
    note = None
    for attempt in range(SHORTEN + 1):
        may_shorten = pl.shorten and attempt < SHORTEN and _shorter(pl) != pl
        runs = run_batches(lab, loss, noise, learner, grid, point, pl, seed, problem, law, observable, prediction,
                           tol, stop_if_elsewhere=may_shorten)
        if runs[0].no_prediction or not may_shorten:
            return runs, pl, note
        shift = summary(runs, prediction, observable, tol).get("prediction_shift_from_point", 0.0)
        shorter = _shorter(pl)
        if not shift > tol:
            return runs, pl, note
        note = (f"the run was shortened to {shorter.burn} burn-in + {shorter.steps} measured steps: at "
                f"{pl.burn} + {pl.steps} the prediction where the chains were differed by {shift:.1%} from the one "
                "at the point")
        pl = shorter
    return runs, pl, note


def _shorter(pl: Plan) -> Plan:
    """Half the burn-in and measured steps, in whole chunks of at least MIN_CHUNK steps (a shorter chunk is
    one more compilation); the same plan when nothing can be halved."""
    chunk = pl.chunk if pl.steps // 2 >= pl.chunk else max(MIN_CHUNK, pl.chunk // 5)
    half = lambda n: 0 if n == 0 else max(chunk, (n // 2) // chunk * chunk)  # noqa: E731
    return dataclasses.replace(pl, steps=half(pl.steps), burn=half(pl.burn), chunk=chunk)


def run_batches(lab, loss, noise, learner, grid, point, pl: Plan, seed, problem, law, observable, prediction, tol,
                stop_if_elsewhere: bool = False):
    """Batches of chains until decisive (adaptive) or one fixed batch; returns the ``Measured`` list.

    Without a law (a missing declaration) one batch is measured and nothing is compared. With
    ``stop_if_elsewhere`` the batches end as soon as their chains measured elsewhere (:func:`run_near_point`)."""
    runs = []
    key = ("user", id(problem), id(noise), id(learner), pl.chains)
    n_batches = 1 if not pl.adaptive else max(1, min(MAX_BATCHES, int(MAX_CHAIN_STEPS // (pl.chains * (pl.steps + pl.burn)))))
    bar = Progress(n_batches, label="check", unit="batches") if sys.stderr.isatty() else None  # for a person waiting
    for b in range(n_batches):
        m = lab.measure(loss, noise, learner, grid, point, chains=pl.chains, steps=pl.steps, burn=pl.burn,
                        chunk=pl.chunk, seed=seed * 7919 + b, problem=problem, law=law,
                        observable=observable, key=key, every=RECORD_EVERY,
                        observable_at_projection=observable is not None and law is not None)
        check_divergence(m.run, prediction)
        runs.append(m)
        if m.no_prediction:
            break
        s = summary(runs, prediction, observable, tol)
        if stop_if_elsewhere and s.get("prediction_shift_from_point", 0.0) > tol:
            break
        if s.get("moments_audit"):   # the declared moments are not the steps': more batches cannot decide it
            break
        if bar is not None:
            bar.update(b + 1, f"ratio {s['ratio']:.4g} ± {s['ratio_stderr']:.2g} so far")
        along_gamma = [s[k] for k in ("tangent_ratio_stderr", "tangent_across_stderr") if k in s]   # judged too
        if pl.adaptive and 3 * s["ratio_stderr"] <= tol / 2 and 3 * s["across_stderr"] <= tol / 2 and not any(
                3 * e > tol / 2 for e in along_gamma) and (
                observable is None or 3 * s["observable_ratio_stderr"] <= tol / 2 or s["observable_passed"]):
            break
    if bar is not None:
        bar.close()
    return runs
