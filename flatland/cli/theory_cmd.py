"""``flatland theory``: the predicted implicit regularizer and drift of noisy learning at a point.

Examples::

    flatland theory --loss "(x*y)**2" --at x=1,y=0 --noise update --sigma 0.01 --eta 0.05
    flatland theory --residuals "x*y" --kappa 1 --at x=1,y=0 --noise label --json
    flatland theory --loss fig5a --at x=1,y=0 --noise label --observable "x**2"

The point is projected onto the zero-loss manifold Γ first. Drifts are per step.
"""
from __future__ import annotations

import json
import re

from ..errors import UserError
from ..results import jsonable

NOISE_HELP = (
    "any registered noise model (flatland list noise): none, update (θ += N(0,σ²I)), gradient (N(0,σ²) added "
    "to the gradient), label (N(0,σ²) on each residual; needs residuals), uniform-label (width w = --sigma), "
    "minibatch (zero on Γ for exactly fitted data), or a plugin's. Minibatch SGD with residual variance s² and "
    "batch B acts as label noise with σ = s/sqrt(B)"
)
LEARNER_HELP = ("any registered learner that declares its theory (flatland list learners): gd (default), sed "
                "(stochastic error descent: μ = --eta, probe std s = --sigma with --noise none), or a plugin's")


def add_parser(sub):
    p = sub.add_parser("theory", help="predicted regularizer and drift near the zero-loss manifold",
                       description=__doc__.splitlines()[0].replace("``", ""), epilog="\n".join(__doc__.splitlines()[2:]),
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--loss", metavar="EXPR_OR_NAME",
                     help="the loss as an expression (e.g. '(x*y)**2') or the name of a registered loss")
    src.add_argument("--residuals", metavar="'R1, R2, ...'",
                     help="residual expressions, comma separated: L = κ Σ r_i² (κ from --kappa)")
    p.add_argument("--at", required=True, metavar="x=1,y=0", help="the point (projected onto Γ if off it)")
    p.add_argument("--noise", required=True, metavar="NAME", help=NOISE_HELP)
    p.add_argument("--learner", default="gd", metavar="NAME", help=LEARNER_HELP)
    p.add_argument("--sigma", type=float, default=None,
                   help="the noise model's scale: σ (update, label), σ_g (gradient), width w (uniform-label); "
                        "with --noise none, the learner's sigma (sed's s); default 0.01")
    p.add_argument("--eta", type=float, default=0.05, help="the learner's step size lr (μ for sed); default 0.05")
    from ._components import SET_HELP
    p.add_argument("--set", metavar="PART.KEY=V,...", help=SET_HELP)
    p.add_argument("--kappa", type=float, default=None, help="κ in L = κ Σ r² with --residuals (default 0.5)")
    p.add_argument("--observable", metavar="EXPR",
                   help="an observable c(θ): also print E[Δc] per step, with the Itô term")
    p.add_argument("--vars", metavar="x,y", help="variable order (default: alphabetical)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--latex", action="store_true", help="show the regularizers as LaTeX")
    p.add_argument("--no-project", dest="project", action="store_false",
                   help="use the point as given, even off Γ")
    p.set_defaults(run=run)


def _problem(args, registry):
    from flatland.theory import Problem

    if args.residuals is not None:
        kappa = 0.5 if args.kappa is None else args.kappa
        return Problem.from_residuals(args.residuals, kappa=kappa, variables=args.vars)
    if args.kappa is not None:
        raise UserError("--kappa goes with --residuals (a --loss carries its own constant)")
    text = args.loss.strip()
    if ("losses", text) in registry:
        loss = registry.entry("losses", text).factory()
        problem = Problem.from_loss(loss)
        if args.vars:
            raise UserError("--vars cannot reorder the variables of a registered loss")
        return problem
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", text) and not re.fullmatch(r"[a-z][a-z0-9]*", text) \
            or re.fullmatch(r"[a-z][a-z0-9]*", text) and len(text) > 1:
        # a bare name is no useful loss: the user meant a registered loss
        raise registry.unknown("losses", text)
    return Problem.from_expr(text, args.vars)


def _vector(values) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def _print_human(pred, latex: bool) -> None:
    names = pred.variables
    print(f"loss       L = {pred.loss}" + (f"   (κ = {pred.kappa:g}, residuals: {', '.join(pred.residuals)})"
                                            if pred.residuals else ""))
    print(f"point on Γ {', '.join(f'{n}={v:.6g}' for n, v in zip(names, pred.point))}"
          + (f"   (projected from {_vector(pred.projected_from)})" if pred.projected_from else ""))
    hyper = "  ".join(f"{part}.{k} = {v:g}" for part, vals in pred.hyper.items() for k, v in vals.items())
    print(f"noise      {pred.noise}   {hyper}   effective step η_eff = {pred.eta:g}   "
          f"η_eff·λ_max = {pred.eta_lambda_max:.4g}   (in Φ, η is the learner's lr)")
    print("Hessian on Γ:")
    for row in pred.hessian:
        print("  " + "  ".join(f"{v:12.6g}" for v in row))
    print(f"eigenvalues {_vector(pred.eigenvalues)}   rank m = {pred.rank}")
    print("tangent space: " + ("(none: Γ is a point here)" if not pred.tangent_basis
                               else "  ".join(_vector(t) for t in pred.tangent_basis)))
    reg, reg_eta = ((pred.regularizer_latex, pred.regularizer_finite_eta_latex) if latex
                    else (pred.regularizer, pred.regularizer_finite_eta))
    if pred.regularizer.startswith("("):   # none written: one statement of why, not two
        print(f"regularizer Φ   {reg}")
    elif not pred.potential:   # the learner's potential and why the noise's part is none
        print(f"regularizer Φ   = {reg}")
    else:
        print(f"regularizer Φ   = {reg}   (drift per step = −P_T ∇Φ)")
        print(f"finite-η  Φ_η   = {reg_eta}")
    print(f"drift per step, leading order  ({', '.join(names)}): {_vector(pred.drift_leading)}")
    print(f"drift per step, finite η       ({', '.join(names)}): {_vector(pred.drift_finite_eta)}")
    if pred.drift_normal is not None and any(pred.drift_normal):
        # on a curved Γ the projected point also moves along the normal: its mean step is the sum
        step = [d + n for d, n in zip(pred.drift_finite_eta, pred.drift_normal)]
        print(f"normal motion on curved Γ, n_curv ({', '.join(names)}): {_vector(pred.drift_normal)}")
        print(f"mean step of Φ(θ) = finite η + n_curv: {_vector(step)}   (what `flatland check` measures)")
    if pred.observable is not None:
        print(f"observable c = {pred.observable}: E[Δc] per step = {pred.observable_drift_leading:.6g} (leading), "
              f"{pred.observable_drift_finite_eta:.6g} (finite η); Itô term {pred.observable_ito_term:.6g}")
    for w in pred.warnings:
        print(f"warning: {w}")


def run(args) -> int:
    from flatland.theory import predict, symbolic_budget

    from ..assembly import assemble
    from . import _components as C

    registry = assemble().registry
    noise, learner = C.components(registry, args.noise, args.learner)
    law = C.law_or_error(noise, learner)
    with symbolic_budget("the prediction"):
        problem = _problem(args, registry)
        sigma = 0.01 if args.sigma is None else args.sigma
        hyper = C.hyper(noise, learner, sigma, args.eta, sigma_given=args.sigma is not None)
        pred = predict(problem, args.at, law, hyper=C.with_settings(hyper, noise, learner, args.set),
                       observable=args.observable, project=args.project)
    C.refuse_far_point(pred, problem.variables)
    if args.json:
        out = {**pred.to_json(), "learner": learner.name}   # the noise model's name is in it already
        print(json.dumps(jsonable(out), ensure_ascii=False))  # NaN (no closed form) → null
    else:
        _print_human(pred, args.latex)
    return 0
