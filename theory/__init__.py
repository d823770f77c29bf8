"""flatland.theory: symbolic Hessians, implicit regularizers and predicted drift (SymPy).

From a loss (and its residuals, when it is κ Σ r²) and a noise model, derive
what noisy learning does along the zero-loss manifold Γ (../shared/THEORY.md):

* ``parse_expr`` — safe whitelist parsing of user expressions;
* ``Problem`` — the loss, its variables and residuals;
* ``hessian_sympy`` / ``hessian_jax`` / ``hessian_autograd`` — three independent Hessians;
* ``covariance`` — per-step noise covariances C(θ) for SymPy and arrays;
* ``predict`` → ``Prediction`` — Hessian, tangent space, regularizer, drift and warnings at a point;
* ``compile_prediction`` — the same drift as a cached pure JAX function for ``jit(vmap(...))``;
* ``symbolic_drift`` / ``regularizer`` — the closed forms, symbolically;
* ``jax_function`` / ``lambdify_flat`` — cached JAX functions of a problem (loss, residuals, ...);
* ``validate_noise`` — a UserError explaining why a noise model has no prediction here.

Kink convention everywhere: the derivative of Max at a tie is 0, so relu′(0) = 0.
"""
from . import covariance
from ._closed import ETA, SIGMA, regularizer, symbolic_drift
from ._compile import NOISES, compile_prediction
from ._compile import check_noise as validate_noise
from ._hessians import hessian_autograd, hessian_jax, hessian_sympy
from ._lambdify import jax_function, lambdify_flat
from ._manifold import project, rank_and_basis
from ._parse import parse_expr
from ._predict import Prediction, predict
from ._problem import Problem, parse_point
from ._rule import general_drift

__all__ = [
    "covariance", "ETA", "SIGMA", "regularizer", "symbolic_drift", "NOISES", "compile_prediction",
    "hessian_autograd", "hessian_jax", "hessian_sympy", "project", "rank_and_basis", "parse_expr",
    "Prediction", "predict", "Problem", "parse_point", "general_drift", "jax_function", "lambdify_flat",
    "validate_noise",
]
