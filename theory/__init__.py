"""flatland.theory: symbolic Hessians, implicit regularizers and predicted drift (SymPy).

From a loss (and its residuals, when it is κ Σ r²) and what a learner and a
noise model declare (a :class:`StepLaw`: the noise model's covariance C(θ), the
learner's effective step, own covariance and potential), derive what noisy
learning does along the zero-loss manifold Γ. Nothing here knows a component
by name; the theory imports nothing of flatland's engine but its errors.

* ``CovarianceContext``, ``LearnerTheory``, ``StepLaw`` — what components declare;
* ``parse_expr`` — safe whitelist parsing of user expressions;
* ``Problem`` — the loss, its variables and residuals;
* ``hessian_sympy`` / ``hessian_jax`` / ``hessian_autograd`` — three independent Hessians;
* ``predict`` → ``Prediction`` — Hessian, tangent space, regularizer, drift and warnings at a point;
* ``compile_prediction`` — the same drift as a cached pure JAX function for ``jit(vmap(...))``;
* ``closed_form`` / ``symbolic_drift`` / ``regularizer`` — closed forms, where the covariance has one;
* ``jax_function`` / ``lambdify_flat`` — cached JAX functions of a problem (loss, residuals, ...);
* ``check_law`` — a UserError explaining why a law has no prediction for a problem;
* ``symbolic_budget`` — a time limit on symbolic work (``FLATLAND_SYMBOLIC_SECONDS``), ending in one line.

Kink convention everywhere: the derivative of Max at a tie is 0, so relu′(0) = 0.
"""
from ._budget import symbolic_budget
from ._closed import ETA, SIGMA, closed_form, regularizer, symbolic_drift
from ._compile import check_law, compile_prediction
from ._declare import GRADIENT_DESCENT, CovarianceContext, LearnerTheory, StepLaw
from ._hessians import hessian_autograd, hessian_jax, hessian_sympy
from ._lambdify import jax_function, lambdify_flat
from ._manifold import project, rank_and_basis
from ._parse import parse_expr
from ._predict import Prediction, predict
from ._problem import Problem, parse_point
from ._rule import general_drift

__all__ = [
    "ETA", "SIGMA", "closed_form", "regularizer", "symbolic_drift", "check_law", "compile_prediction",
    "GRADIENT_DESCENT", "CovarianceContext", "LearnerTheory", "StepLaw",
    "hessian_autograd", "hessian_jax", "hessian_sympy", "jax_function", "lambdify_flat", "project",
    "rank_and_basis", "parse_expr", "Prediction", "predict", "Problem", "parse_point", "general_drift",
    "symbolic_budget",
]
