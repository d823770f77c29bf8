"""Test helper: built-in components by name → the theory's StepLaw and hyperparameters.

The theory knows no names; tests written with the familiar names ("update",
"label", "sed", ...) go through the registry exactly as the CLI does.
"""
import functools

import flatland
from flatland import step_law
from flatland.theory import predict


@functools.lru_cache(maxsize=None)
def registry():
    return flatland.assemble().registry


@functools.lru_cache(maxsize=None)
def law(noise: str, learner: str = "gd"):
    """The StepLaw of a built-in pair; ``noise="sed"`` means the SED learner with no added noise."""
    if noise == "sed":
        noise, learner = "none", "sed"
    n, lrn = registry().create("noise", noise), registry().create("learners", learner)
    found, why = step_law(n, lrn)
    assert found is not None, why
    return found


def hyper(noise: str, sigma, eta) -> dict:
    """{"learner", "noise"} with σ in the noise's scale key (SED: the learner's probe std)."""
    if noise == "sed":
        return {"learner": {"lr": eta, "sigma": sigma}, "noise": {}}
    n = registry().create("noise", noise)
    return {"learner": {"lr": eta}, "noise": {n.scale: sigma} if n.scale in n.hyper else {}}


def predict_named(problem, point, noise, *, sigma, eta, **kw):
    return predict(problem, point, law(noise), hyper=hyper(noise, sigma, eta), **kw)
