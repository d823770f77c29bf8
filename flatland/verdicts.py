"""Verdicts: a measured statistic against a declared prediction, with a stated tolerance.

Every verdict is a :class:`flatland.CheckResult`. The pass rule is stated in its
``tolerance`` text and has two parts: the measured value agrees with the
prediction within the tolerance, and the measurement is precise enough to
tell (3 standard errors fit inside the tolerance) — an imprecise run fails
as inconclusive rather than passing by luck. The leading-order prediction is
reported beside the finite-η one; regime warnings are passed through.
"""
from __future__ import annotations

import math

import numpy as np

from .contracts import CheckResult
from .errors import UserError
from .estimators import finite_chains, mean_se, ratio_along

N_SIGMA = 3.0


def _f(x) -> float:
    return float(x) if x is not None and np.isfinite(x) else float("nan")


def decisive(error: float, se: float, tol: float) -> tuple[bool, str]:
    """(passed, reason): |error| ≤ tol and N_SIGMA·se ≤ tol. A measurement too imprecise to pass is still
    a decided FAIL, not "inconclusive", when it lies outside the tolerance by more than N_SIGMA s.e. (0.74 ±
    0.039 against a 2% tolerance read "inconclusive" and sent its author to run 140× the chains)."""
    if not (math.isfinite(error) and math.isfinite(se)):
        return False, "non-finite measurement"
    if abs(error) - N_SIGMA * se > tol:
        return False, f"off by {error:+.3g} ± {se:.2g} (tolerance {tol:.3g}; outside it by more than {N_SIGMA:g} s.e.)"
    if N_SIGMA * se > tol:
        return False, f"inconclusive: {N_SIGMA:g} s.e. = {N_SIGMA * se:.3g} exceeds the tolerance {tol:.3g}"
    if abs(error) > tol:
        return False, f"off by {error:+.3g} (tolerance {tol:.3g})"
    return True, "within tolerance"


def vector_verdict(r: dict, tol: float) -> tuple[bool, str]:
    """(passed, reason) for ``estimators.ratio_along``'s output: the whole drift vector against its prediction.

    Both parts go through :func:`decisive`: along the predicted direction
    (ratio − 1) and across it (the perpendicular part of measured − predicted,
    as a fraction of |predicted|); then the direction must not be reversed.
    """
    ok, why = decisive(r["ratio"] - 1.0, r["ratio_stderr"], tol)
    ok_across, why_across = decisive(r["across"], r["across_stderr"], tol)
    if not ok:   # the across part too, when it fails as well (it was left unsaid behind an inconclusive ratio)
        return False, f"along the predicted direction: {why}" + ("" if ok_across else f"; across it: {why_across}")
    if not ok_across:
        return False, f"across the predicted direction: {why_across}"
    if r["ratio"] <= 0:
        return False, "wrong direction"
    return True, "within tolerance along and across the predicted direction"


def _precise_mismatch(r: dict, tol: float, out: dict) -> bool:
    """Whether some judged part of the step — along and across the predicted direction (``ratio_along``'s
    ``r``), and along Γ where it was judged (``out``'s tangent fields) — is off by more than ``tol`` with
    N_SIGMA s.e. inside ``tol``, or the direction is reversed as precisely: a failure, not an imprecise row."""
    parts = [(r["ratio"] - 1.0, r["ratio_stderr"]), (r["across"], r["across_stderr"])]
    if "tangent_ratio" in out:
        parts += [(out["tangent_ratio"] - 1.0, out["tangent_ratio_stderr"]),
                  (out["tangent_across"], out["tangent_across_stderr"])]
    return any(N_SIGMA * se <= tol and abs(err) > tol for err, se in parts) or (
        r["ratio"] <= 0 and N_SIGMA * r["ratio_stderr"] <= tol)


#: chains with a non-finite step or prediction are left out (and named) up to this fraction; more fails
MAX_DROPPED = 0.01
#: the part along Γ is judged on its own when the predicted tangent drift is at least this share of the step
TANGENT_FLOOR = 0.01


def drift_ratio(name: str, measured, predicted, leading=None, *, tol: float, estimator: str,
                variables=("x", "y", "z"), warnings=(), details=None, at_point=None, visited=None,
                tangent_basis=None, moments_audit=None) -> CheckResult:
    """Per-chain drift vectors (n, d) against per-chain predictions (n, d) on the same trajectories.

    ``at_point``: the predicted step at the point the check names. Where the
    chains were decides what was tested: if the prediction averaged along
    the trajectories differs from ``at_point`` by more than ``tol`` (relative),
    the row fails as inconclusive — it did not test the named point.
    ``visited`` (quantiles of Φ(θ), see ``DriftRun.visited``) is reported.

    The verdict is on the whole vector (:func:`vector_verdict`): the ratio
    measured/predicted along the mean predicted direction u (paired
    delta-method s.e.) and the part across u, each within ``tol``. The table
    shows measured and predicted along the same axis, u signed so that its
    largest coordinate is positive (so a drift toward −x reads negative).

    ``tangent_basis`` (rows spanning Γ's tangent space at the point): on a
    curved Γ the step also holds the projected point's normal motion n_curv,
    which can be ten times the drift along Γ; a 20% error of that drift is
    then 2% of the whole and passes. Where n_curv is more than ``tol`` of the
    step, the same rule judges the steps' tangent parts (both projected on
    that basis) too, unless the drift along Γ is under ``TANGENT_FLOOR`` of it.

    ``moments_audit`` (``DriftRun.moments_audit``): where the step moments a
    Rao–Blackwellised measurement was built from are not the steps' own, the
    measurement follows the declaration and the row fails as inconclusive.
    """
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    keep = finite_chains(measured, predicted, leading)
    warnings, dropped = list(warnings), int(keep.size - keep.sum())
    if dropped:
        warnings.append(f"{dropped} of {keep.size} chains gave a non-finite step or prediction and were left out")
        if keep.sum() < 2:
            raise UserError(f"{name}: {dropped} of {keep.size} chains gave a non-finite step or prediction; nothing "
                            "is left to measure (see where the loss or its projection is not finite near the point)")
        measured, predicted = measured[keep], predicted[keep]
        leading = None if leading is None else np.asarray(leading, float)[keep]
    r = ratio_along(measured, predicted)
    pbar = predicted.mean(0)
    k = int(np.argmax(np.abs(pbar)))
    u = np.asarray(r["direction"], float)
    axis = u * (np.sign(u[k]) or 1.0)
    m, se = mean_se(measured @ axis) if u.size == pbar.size else (float("nan"), float("nan"))
    out = dict(details or {})
    lead_val = None
    if leading is not None:
        leading = np.asarray(leading, float)
        lead_val = float(leading.mean(0) @ axis)
        out["ratio_to_leading"] = ratio_along(measured, leading)["ratio"]
        out["leading_vector"] = leading.mean(0).tolist()
    passed, why = vector_verdict(r, tol)
    too_many_dropped = dropped > MAX_DROPPED * keep.size
    if too_many_dropped:
        passed, why = False, (f"inconclusive: {dropped} of {keep.size} chains gave non-finite steps (more than "
                              f"{MAX_DROPPED:.0%}); leaving them out could bias the mean ({why})")
    if tangent_basis is not None and passed:
        passed, why = _tangent_verdict(measured, predicted, tangent_basis, tol, out)
    if at_point is not None:
        p0 = np.asarray(at_point, float)
        shift = float(np.linalg.norm(pbar - p0) / max(np.linalg.norm(p0), 1e-300))
        out["prediction_shift_from_point"] = shift
        if shift > tol:
            where = (f"the prediction where the chains were differs from the one at the requested point by "
                     f"{shift:.1%} (tolerance {tol:.0%})")
            if not too_many_dropped and _precise_mismatch(r, tol, out):   # against the prediction along the same
                # trajectories: a failure there, wherever they were
                why = f"{why}; besides, {where}"
            else:
                passed, why = False, (f"inconclusive: {where}: the chains measured elsewhere — fewer burn-in or "
                                      f"measured steps, or smaller noise, keep them nearer ({why})")
    if moments_audit:
        passed, why = False, f"inconclusive: {moments_audit} ({why})"
        out["moments_audit"] = moments_audit
    if visited is not None:
        out["visited"] = {k: np.asarray(v).tolist() for k, v in visited.items()}
    out["left_out_chains"] = dropped
    out.update(measured_vector=measured.mean(0).tolist(), measured_stderr=mean_se(measured)[1].tolist(),
               predicted_vector=pbar.tolist(), axis=axis.tolist(), across_fraction=r["across"],
               across_stderr=r["across_stderr"], chains=int(measured.shape[0]), verdict=why)
    names = [variables[i] if i < len(variables) else f"θ{i}" for i in range(pbar.size)]
    axis_text = names[k] if np.sum(np.abs(axis) > 1e-12) == 1 else \
        "(" + ", ".join(f"{a:+.3g}{v}" for a, v in zip(axis, names) if abs(a) > 1e-12) + ")"
    return CheckResult(
        name=name, statistic=f"per-step drift along {axis_text}, the predicted direction ({estimator}, mean over "
                             "trajectories ± s.e. across chains; the part across it is tested too)",
        predicted=float(pbar @ axis), measured=float(m), stderr=float(se),
        tolerance=f"|ratio − 1| ≤ {tol:.0%} and |across|/|predicted| ≤ {tol:.0%}, 3·s.e. of each ≤ {tol:.0%}"
                  + ("; the same for the part along Γ where n_curv is > {:.0%} of the step".format(tol)
                     if "tangent_ratio" in out else ""),
        passed=bool(passed), ratio=_f(r["ratio"]), ratio_stderr=_f(r["ratio_stderr"]), leading=lead_val,
        warnings=list(dict.fromkeys(warnings)), details=out)


def _tangent_verdict(measured, predicted, tangent_basis, tol: float, out: dict) -> tuple[bool, str]:
    """:func:`vector_verdict` on the tangent parts of the steps where n_curv is a large part of the prediction
    (:func:`drift_ratio`); writes what it measured into ``out``."""
    T = np.atleast_2d(np.asarray(tangent_basis, float))
    P = T.T @ np.linalg.pinv(T.T)                         # orthogonal projector onto the rows' span
    pbar = predicted.mean(0)
    along, whole = float(np.linalg.norm(pbar @ P)), float(np.linalg.norm(pbar))
    out["tangent_share"] = along / whole
    if np.linalg.norm(pbar - pbar @ P) <= tol * whole:
        return True, "within tolerance along and across the predicted direction"
    if along < TANGENT_FLOOR * whole:
        return True, (f"within tolerance along and across the predicted direction (the drift along Γ is "
                      f"{along / whole:.1%} of the step, too little to judge alone)")
    rt = ratio_along(measured @ P, predicted @ P)
    out.update(tangent_ratio=_f(rt["ratio"]), tangent_ratio_stderr=_f(rt["ratio_stderr"]),
               tangent_across=_f(rt["across"]), tangent_across_stderr=_f(rt["across_stderr"]))
    ok, why = vector_verdict(rt, tol)
    if not ok:
        return False, f"along Γ (the tangent part, {along / whole:.0%} of the predicted step; judged alone): {why}"
    return True, "within tolerance along and across the predicted direction, and along Γ alone"


def scalar(name: str, statistic: str, *, measured: float, stderr: float, predicted: float, tol: float,
           tolerance: str, error: float | None = None, error_se: float | None = None, leading=None,
           ratio=None, ratio_stderr=None, warnings=(), details=None, moments_audit=None) -> CheckResult:
    """A scalar verdict; ``error``/``error_se`` (default measured − predicted) are what ``tol`` bounds.
    ``moments_audit``: as for :func:`drift_ratio` (a statistic built from declared moments that are not the
    steps' fails as inconclusive)."""
    error = measured - predicted if error is None else error
    error_se = stderr if error_se is None else error_se
    passed, why = decisive(error, error_se, tol)
    if moments_audit:
        passed, why = False, f"inconclusive: {moments_audit} ({why})"
        details = dict(details or {}, moments_audit=moments_audit)
    return CheckResult(
        name=name, statistic=statistic, predicted=_f(predicted), measured=_f(measured), stderr=_f(stderr),
        tolerance=tolerance, passed=bool(passed), ratio=None if ratio is None else _f(ratio),
        ratio_stderr=None if ratio_stderr is None else _f(ratio_stderr),
        leading=None if leading is None else _f(leading), warnings=list(dict.fromkeys(warnings)),
        details=dict(details or {}, verdict=why))


def failed(name: str, statistic: str, error: str) -> CheckResult:
    """A check that could not run (an exception, a diverged run): a failing row that says why."""
    nan = float("nan")
    return CheckResult(name=name, statistic=statistic, predicted=nan, measured=nan, stderr=nan,
                       tolerance="(did not run)", passed=False, warnings=[error], details={"verdict": error})
