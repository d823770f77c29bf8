"""Resolving ``--noise``/``--learner``/``--sigma``/``--eta`` into registered components.

Shared by ``flatland theory`` and ``flatland check``: any registered noise model
and learner is accepted, a plugin's exactly like a built-in. ``--eta`` sets the
learner's ``lr``; ``--sigma`` sets the noise model's declared ``scale``
hyperparameter (σ, or w for uniform label noise; every member's with ``--noise a+b``) or, for a
noise model without
hyperparameters, the learner's ``sigma`` if it has one (the probe std of
stochastic error descent).
"""
from __future__ import annotations

from ..errors import UserError


def _noise(registry, name: str):
    if ("noise", name) not in registry:
        if ("learners", name) in registry:
            raise UserError(f"{name!r} is a learner, not a noise model: use --learner {name} "
                            f"(with --noise none for its own noise only)")
        raise registry.unknown("noise", name)
    return registry.create("noise", name)


def components(registry, noise_name: str, learner_name: str):
    """(noise, learner) built from the registry; ``a+b`` composes noise models; unknown names list the known ones."""
    from ..composition import compose_noise

    members = [_noise(registry, n.strip()) for n in noise_name.split("+")]
    if ("learners", learner_name) not in registry:
        raise registry.unknown("learners", learner_name)
    try:
        noise = compose_noise(members)
    except ValueError as exc:
        raise UserError(f"--noise {noise_name}: {exc}") from None
    return noise, registry.create("learners", learner_name)


#: largest --sigma / --eta: the rules square them (and η²λ² must stay finite)
MAX_SCALE = 1e100


def scale_keys(noise) -> tuple:
    """The hyperparameters --sigma sets: every member's scale of a composed model, else the model's own."""
    scales = getattr(noise, "scales", None)
    if scales is not None:
        return tuple(scales)
    return () if noise.scale_key() is None else (noise.scale_key(),)


def hyper(noise, learner, sigma: float, eta: float, sigma_given: bool = False) -> dict:
    """The simulator's ``{"learner": ..., "noise": ...}`` overrides from --sigma and --eta; a --sigma the user
    gave that neither the noise model nor the learner takes is an error (it was silently ignored)."""
    import math

    for name, v, low in (("--sigma", sigma, 0.0), ("--eta", eta, None)):
        if not (math.isfinite(v) and (v > 0 or v == low) and v <= MAX_SCALE):
            need = "≥ 0" if low == 0.0 else "> 0"
            raise UserError(f"{name} must be a number {need} and at most {MAX_SCALE:g} (its square must fit a "
                            f"float), got {v:g}")
    if "lr" not in learner.hyper:
        raise UserError(f"learner {learner.name!r} has no 'lr' hyperparameter for --eta to set")
    out = {"learner": {"lr": eta}, "noise": {}}
    scales = scale_keys(noise)
    if noise.hyper and not scales:
        raise UserError(f"noise model {noise.name!r} has hyperparameters {', '.join(sorted(noise.hyper))} and "
                        "declares no scale (NoiseModel.scale) for --sigma to set")
    for k in scales:  # composed noise: --sigma sets every member's scale
        out["noise"][k] = sigma
    if not noise.hyper and "sigma" in learner.hyper:
        out["learner"]["sigma"] = sigma
    if sigma_given and not out["noise"] and "sigma" not in out["learner"]:
        raise UserError(f"--sigma {sigma:g} sets nothing here: noise model {noise.name!r} has no scale and learner "
                        f"{learner.name!r} no 'sigma' hyperparameter (it has {', '.join(sorted(learner.hyper))}); "
                        "drop --sigma, or set the learner's own with --set learner.KEY=VALUE")
    return out


SET_HELP = ("other hyperparameters, PART.KEY=VALUE[,...] with PART learner or noise (e.g. learner.wd=1e-3,"
            "noise.label.sigma=0.1 for a member of --noise a+b); --sigma and --eta set theirs first")


def with_settings(out: dict, noise, learner, text) -> dict:
    """``hyper``'s overrides with ``--set`` applied: each key must be one of the component's hyperparameters,
    each value a finite number obeying its default's sign (the run config's rules)."""
    import difflib

    from ..stepping import as_hyper, positive_why

    if not text:
        return out
    out = {part: dict(vals) for part, vals in out.items()}
    for item in (t.strip() for t in str(text).split(",")):
        key, eq, value = item.partition("=")
        part, _, name = key.strip().partition(".")
        comp = {"learner": learner, "noise": noise}.get(part)
        if not eq or comp is None or not name:
            raise UserError(f"--set {item!r}: write PART.KEY=VALUE with PART learner or noise (e.g. learner.wd=0.001)")
        if name not in comp.hyper:
            near = difflib.get_close_matches(name, list(comp.hyper), n=1, cutoff=0.6)
            raise UserError(f"--set {item!r}: {part} {comp.name!r} has no hyperparameter {name!r}"
                            + (f" — did you mean {near[0]!r}?" if near else "")
                            + f" (its hyperparameters: {', '.join(sorted(comp.hyper)) or 'none'})")
        try:
            number = float(value)
        except ValueError:
            raise UserError(f"--set {item!r}: the value is not a number") from None
        try:
            as_hyper(comp.hyper, {name: number})      # finite, and the default's sign
        except ValueError as exc:
            raise UserError(f"--set {item!r}: {exc}") from None
        if abs(number) > MAX_SCALE:
            raise UserError(f"--set {item!r}: at most {MAX_SCALE:g} in size (the rules square it)")
        if name in getattr(comp, "positive", ()) and not number > 0:
            raise UserError(f"--set {item!r}: {name} must be > 0 ({positive_why(name)})")
        out[part][name] = number
    return out


def law_or_error(noise, learner):
    """The pair's StepLaw; a UserError naming the missing declaration, and what still works, when there is none."""
    from ..laws import step_law

    law, why = step_law(noise, learner)
    if law is None:
        raise UserError(f"{why}; `flatland check` with the same options still measures the drift, without one")
    return law


def refuse_far_point(pred, variables) -> None:
    """One line when the projection onto Γ moved the point far (more than 10% of 1 + |point|): the user's
    point was not near Γ, or the loss has no zero set there (exp(x) "reaches" 0 only at −∞)."""
    import numpy as np

    if pred.projected_from is None:
        return
    point = np.asarray(pred.point, float)
    moved = float(np.linalg.norm(point - np.asarray(pred.projected_from)))
    if moved > 0.1 * (1 + float(np.linalg.norm(pred.projected_from))):
        at = ",".join(f"{v}={x:.4g}" for v, x in zip(variables, point))
        raise UserError(f"the point is far from the zero-loss manifold (the nearest point found, {at}, is "
                        f"{moved:.3g} away; does the loss reach 0 near it?): start on Γ, e.g. --at {at}")
