"""The user's-own-valley half of ``flatland check`` (see ``flatland.usercheck`` for the method).

Resolves the problem (expression, residuals or registered loss), the point on
Γ, the noise and learner, refuses what cannot work with one clear line, runs
the batches, prints a summary or one JSON object and writes the results folder.
"""
from __future__ import annotations

import json
import math
import re
import sys

import numpy as np

from ..errors import UserError


def _problem_and_loss(args, registry):
    """(Problem, flatland.Loss for the simulator)."""
    from flatland import Loss
    from flatland.theory import Problem
    from flatland.theory import jax_function

    if args.residuals is not None:
        problem = Problem.from_residuals(args.residuals, kappa=0.5 if args.kappa is None else args.kappa,
                                        variables=args.vars)
    else:
        if args.kappa is not None:
            raise UserError("--kappa goes with --residuals (a --loss carries its own constant)")
        text = args.loss.strip()
        if ("losses", text) in registry:
            loss = registry.create("losses", text)
            if loss.residuals is None and loss.value is None or not (loss.expr or loss.residual_exprs):
                raise UserError(f"loss {text!r} has no expression for the theory")
            return Problem.from_loss(loss), loss
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]+", text):
            raise registry.unknown("losses", text)
        problem = Problem.from_expr(text, args.vars)
    name = "user-valley"
    if problem.has_residuals:
        res = jax_function(problem, "residuals")
        loss = Loss(name=name, residuals=res, kappa=float(problem.kappa), variables=problem.variables)
    else:
        val = jax_function(problem, "loss")
        loss = Loss(name=name, value=val, variables=problem.variables)
    return problem, loss


def _validate(args):
    for name in ("sigma", "eta", "tolerance"):
        v = getattr(args, name)
        if not (math.isfinite(v) and v > 0):
            why = " (σ = 0 switches the noise off: nothing would move, so the check could not fail)" if v == 0 \
                and name == "sigma" else ""
            raise UserError(f"--{name} must be a positive number{why}, got {v}")
    if args.tolerance >= 1:
        raise UserError(f"--tolerance is relative (0.02 = 2%) and must be below 1, got {args.tolerance}")
    for name in ("chains", "steps"):
        v = getattr(args, name)
        if v is not None and v < (2 if name == "chains" else 1):
            raise UserError(f"--{name} must be at least {2 if name == 'chains' else 1}, got {v}")
    if args.burn is not None and args.burn < 0:
        raise UserError(f"--burn must be ≥ 0, got {args.burn}")
    if args.at is None:
        raise UserError("--at is required with --loss/--residuals (e.g. --at x=1,y=0)")
    if args.noise is None:
        raise UserError("--noise is required with --loss/--residuals (any registered noise model: flatland list noise)")


def run_user(args) -> int:
    from ..results import ResultsFolder

    _validate(args)
    out = ResultsFolder(args.out)  # first: an unusable --out is found before any work, and settings land early
    try:
        return _run_user(args, out)
    except UserError as exc:  # the folder says why it holds no results (a refused point, a diverged run)
        out.write_json("results.json", {"error": str(exc), "command": ["flatland", "check"] + sys.argv[2:]})
        out.write_text("table.txt", f"flatland: error: {exc}\n")
        raise


def _run_user(args, out) -> int:
    from ..assembly import assemble
    from ..lab import Lab
    from ..laws import step_law
    from ..results import jsonable
    from .. import usercheck as U
    from . import _components as C
    from flatland.theory import GRADIENT_DESCENT, StepLaw, predict, symbolic_budget

    asm = assemble()
    registry = asm.registry
    noise, learner = C.components(registry, args.noise, args.learner)
    grid = C.with_settings(C.hyper(noise, learner, args.sigma, args.eta, getattr(args, "sigma_given", False)),
                           noise, learner, args.set)
    args.eta = grid["learner"].get("lr", args.eta)         # what runs, where --set changed it
    # the σ that runs (where --set changed it); None where nothing has a σ (no noise, a learner without one)
    args.sigma = next((grid["noise"][k] for k in C.scale_keys(noise) if k in grid["noise"]),
                      grid["learner"].get("sigma"))
    law, no_prediction = step_law(noise, learner)
    with symbolic_budget("the prediction"):
        problem, loss = _problem_and_loss(args, registry)
        if law is not None:
            pred0 = predict(problem, args.at, law, hyper=grid, observable=args.observable)
        else:  # no prediction: the point, its Hessian and the run's size come from plain gradient descent
            pred0 = predict(problem, args.at, StepLaw(learner=GRADIENT_DESCENT, name="none"),
                            hyper={"learner": {"lr": args.eta}})
    point = np.asarray(pred0.point, float)
    C.refuse_far_point(pred0, problem.variables)
    if pred0.rank == 0:
        raise UserError("H vanishes at this point (rank 0): there are no normal directions, so no drift to measure")
    if pred0.eta_lambda_max >= 2:
        raise UserError(f"unstable: ηλ_max = {pred0.eta_lambda_max:.3g} ≥ 2 at this point — GD leaves Γ; lower --eta")
    pl = U.plan(pred0, pred0.eta, args.chains, args.steps, args.burn)
    if law is not None:  # regime warnings where the planned run's chains will go, not only at the point
        pred0 = predict(problem, args.at, law, hyper=grid, observable=args.observable, horizon=pl.burn + pl.steps)
    out.start({"mode": "user valley", "given": {"loss": args.loss, "residuals": args.residuals},
               "loss": str(problem.loss_expr), "residuals": pred0.residuals,
               "kappa": pred0.kappa, "at": args.at, "point": pred0.point, "noise": noise.name, "learner": learner.name,
               "eta": args.eta, "sigma": args.sigma, "chains_per_batch": pl.chains, "steps": pl.steps,
               "burn": pl.burn, "seed": args.seed, "tolerance": args.tolerance, "observable": args.observable,
               "adaptive": pl.adaptive}, asm.plugins)
    lab = Lab(registry)
    planned = pl
    runs, pl, shortened = U.run_near_point(lab, loss, noise, learner, grid, tuple(point), pl, args.seed, problem,
                                           law, args.observable, pred0, args.tolerance)
    s = U.summary(runs, pred0, args.observable, args.tolerance)
    chains = sum(m.run.settings["chains"] for m in runs)
    warnings = ([no_prediction] if no_prediction else []) + (pred0.warnings if law is not None else [])
    warnings += [s.pop(k) for k in ("where_warning", "left_out_warning", "few_chains_warning") if k in s]
    warnings += [shortened] if shortened else []
    shift = s.get("prediction_shift_from_point")
    if shift is not None and shift > args.tolerance and args.sigma:
        warnings.append(U.sigma_hint(args.sigma, shift, args.tolerance))
    warnings += [planned.note] if planned.note else []
    if runs[0].run.settings["raw_because"]:   # say why: its s.e. is far larger (≈40× for update noise)
        warnings += [f"the drift is measured by raw displacement, not the Rao–Blackwellised step: "
                     f"{runs[0].run.settings['raw_because']}"]
    if law is not None and not s["passed"]:   # a registered loss's code can disagree with its formulas
        registered = args.residuals is None and ("losses", args.loss.strip()) in registry
        warnings = declaration_findings(noise, learner, loss if registered else None) + warnings
    warnings += [f"--{k} {asked} was rounded up to {ran} (whole chunks of {planned.chunk} steps)"
                 for k, asked, ran in (("steps", args.steps, planned.steps), ("burn", args.burn, planned.burn))
                 if asked is not None and asked != ran]
    more = U.chains_hint(dict(s, chains=chains), args.tolerance, pl.steps, pl.burn)
    warnings += [more] if more else []
    result = {"variables": list(problem.variables), "point": pred0.point, "noise": noise.name, "learner": learner.name,
              "eta": args.eta, "sigma": args.sigma, "hyper": grid, **s, "chains": chains, "batches": len(runs),
              "steps": pl.steps, "burn": pl.burn, "seed": args.seed, "warnings": warnings,
              "regularizer": pred0.regularizer if law is not None else None, "no_prediction": no_prediction}
    if no_prediction:   # measured, nothing to compare with: neither passed nor failed (exit status 0)
        result["passed"] = None
    if args.observable:
        result["observable"] = args.observable
    if problem.dim >= 2:
        out.landscape("user-valley", loss, runs[0])
    rows = [_row(result)]
    out.bars(rows)
    result["out"] = str(out.path)
    human = _human_lines(result)
    out.finish(rows, "\n".join(human), {"user_check": result})      # table.txt: what the terminal shows
    passed = result["passed"] and (not args.observable or result.get("observable_passed"))
    if args.json:
        print(json.dumps(jsonable(result), indent=2, ensure_ascii=False))
    else:
        print("\n".join(human))
    if no_prediction:  # measured, nothing to compare with: not a failure of the theory, not a pass either
        return 0
    return 0 if passed else 1


def _row(res):
    from ..contracts import CheckResult

    if res.get("no_prediction"):
        k = int(np.argmax(np.abs(res["measured"])))
        nan = float("nan")
        return CheckResult(name="user-valley", statistic=f"per-step drift along {res['variables'][k]} "
                           f"({res['estimator']})", predicted=nan, measured=res["measured"][k],
                           stderr=res["stderr"][k], tolerance="(no prediction)", passed=None,
                           warnings=res["warnings"], details={"verdict": res["verdict"]})
    if "along" not in res:  # zero predicted drift: the largest measured component against 0
        k = int(np.argmax(np.abs(res["measured"])))
        return CheckResult(name="user-valley", statistic=f"per-step drift along {res['variables'][k]} "
                           f"({res['estimator']}; zero predicted)", predicted=0.0, measured=res["measured"][k],
                           stderr=res["stderr"][k], tolerance="|measured| ≤ 3 s.e. in every coordinate",
                           passed=res["passed"], warnings=res["warnings"], details={"verdict": res["verdict"]})
    a = res["along"]
    return CheckResult(name="user-valley", statistic=a["statistic"], predicted=a["predicted"], measured=a["measured"],
                       stderr=a["stderr"], tolerance=a["tolerance"], passed=res["passed"], ratio=res["ratio"],
                       ratio_stderr=res["ratio_stderr"], leading=a["leading"], warnings=res["warnings"],
                       details={"verdict": res["verdict"], "across_fraction": res["across_fraction"],
                                "across_stderr": res["across_stderr"]})


def _vec(v):
    return "[" + ", ".join(f"{x:.5g}" for x in v) + "]"


def _human_lines(r) -> list:
    """What the terminal shows for a user check (also saved as table.txt)."""
    L = []
    L.append(f"point on Γ ({', '.join(r['variables'])}): {_vec(r['point'])}   noise {r['noise']}, learner {r['learner']}, "
             f"η = {r['eta']:g}, σ = {'—' if r['sigma'] is None else format(r['sigma'], 'g')}")
    L.append(f"chains {r['chains']} ({r['batches']} batch(es)) × {r['steps']} steps after {r['burn']} burn-in")
    if r.get("no_prediction"):
        L.append(f"measured ({r['estimator']}):  {_vec(r['measured'])} ± {_vec(r['stderr'])}")
        L.append(f"chains (median) at the start of the measurement {_vec(r['chains_start']['q50'])}, at its end "
                 f"{_vec(r['chains_end']['q50'])}")
        if "observable_measured" in r:   # it was asked for: say what was measured, not only in results.json
            L.append(f"E[Δ({r['observable']})] per step: measured {r['observable_measured']:.5g} ± "
                     f"{r['observable_stderr']:.2g} (no prediction to compare with)")
        L.append(f"no prediction: {r['no_prediction']}")
        L += [f"warning: {w}" for w in r["warnings"] if w != r["no_prediction"]]
        L.append(f"results in {r['out']}")
        return L
    L.append(f"predicted drift per step (finite-η, along the trajectories): {_vec(r['predicted'])}")
    L.append(f"predicted drift per step (leading order):                    {_vec(r['predicted_leading'])}")
    L.append(f"measured ({r['estimator']}):  {_vec(r['measured'])} ± {_vec(r['stderr'])}")
    if "along" in r:
        L.append(f"ratio measured/predicted along the predicted drift: {r['ratio']:.4f} ± {r['ratio_stderr']:.4f}; "
                 f"across it: {r['across_fraction']:.4f} ± {r['across_stderr']:.4f} of |predicted|")
    L.append(f"tolerance {r['tolerance']:.0%} on each: {'PASS' if r['passed'] else 'FAIL'} — {r['verdict']}")
    if "observable" in r:
        L.append(f"E[Δ({r['observable']})] per step: measured {r['observable_measured']:.5g} ± {r['observable_stderr']:.2g}; "
                 f"predicted {r['observable_predicted']:.5g} (without Itô term {r['observable_predicted_without_ito']:.5g}): "
                 f"{'PASS' if r['observable_passed'] else 'FAIL'} — {r['observable_verdict']}")
    for w in r["warnings"]:
        L.append(f"warning: {w}")
    L.append(f"results in {r['out']}")
    return L


def declaration_findings(noise, learner, loss=None) -> list:
    """What the conformance kit finds false in the declarations of a failed check's components, as warnings.

    A wrong covariance, gain, potential or moment gives a wrong prediction with a small error bar, and the
    check then fails as if the theory were wrong (a plugin audit: ratios 0.50, 0.685, 5.49 and a zero
    prediction, each named by the kit in about a second); so does a loss whose code and formulas disagree
    (the theory reads the formulas, the simulation the code). Run only when a check fails; a component the
    kit cannot exercise (it needs a task's extras) is passed over."""
    from flatland.testing import check_learner, check_loss, check_noise

    found = []
    parts = [("learner", check_learner, learner), ("noise model", check_noise, noise)]
    parts += [("loss", check_loss, loss)] if loss is not None else []
    for kind, check, component in parts:
        if getattr(component, "requires", ()):
            continue
        try:
            check(component)
        except AssertionError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "(no reason given)"
            found.append(f"the failure may be the {kind}'s, not the theory's: the conformance kit "
                         f"(flatland.testing.{check.__name__}) finds {first}")
        except Exception:  # noqa: BLE001 - the kit could not exercise it here; the verdict stands as it is
            continue
    return found
