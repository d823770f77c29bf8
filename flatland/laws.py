"""From components to what the theory needs: a learner's and a noise model's declarations.

``step_law(noise, learner)`` returns the :class:`flatland.theory.StepLaw` of a
pair, or None with the reason: the missing declaration is named, so a check
falls back to measuring without a prediction instead of comparing with a wrong
one. Nothing here looks at a component's name.
"""
from __future__ import annotations

from typing import Optional

from flatland.theory import StepLaw

from .contracts import NoiseModel


def step_law(noise: NoiseModel, learner) -> tuple[Optional[StepLaw], Optional[str]]:
    """(law, None), or (None, why there is no prediction for this pair)."""
    if learner.theory is None:
        return None, (f"learner {learner.name!r} declares no theory (Learner.theory = LearnerTheory(...)): "
                      "no prediction")
    if not noise.overrides("covariance"):
        return None, (f"noise model {noise.name!r} declares no covariance (NoiseModel.covariance(ctx)): "
                      "no prediction")
    if not learner.theory.uses_gradient and noise.overrides("perturb_grad"):
        return None, (f"learner {learner.name!r} never asks for a gradient, so noise model {noise.name!r}, which "
                      "perturbs the gradient, does not reach it: no prediction")
    return StepLaw(noise=noise, learner=learner.theory, learner_hyper=dict(learner.hyper), name=noise.name,
                   learner_name=learner.name), None
