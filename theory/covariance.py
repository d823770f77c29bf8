"""Per-step noise covariances C(θ) of the built-in noise models (THEORY.md's table).

Each function takes a :class:`flatland.contracts.CovarianceContext` and returns
C written only with ``*``, ``+`` and ``**`` of the context's fields, so the same
function serves SymPy matrices (symbolic work) and NumPy/JAX arrays (numeric
work). Noise plugins may call these from their ``covariance`` method. On Γ,
``ctx.H`` is the Hessian (= 2κJᵀJ).

Hyperparameters (``ctx.hyper``): ``sigma`` for update (σ), gradient (σ_g) and
label noise (σ, the std of the noise on each residual); ``width`` (w) for
uniform label noise; ``sigma`` (s, the probe std) for SED, whose learning rate
μ is ``ctx.eta``.
"""
from __future__ import annotations

from flatland.contracts import CovarianceContext


def none(ctx: CovarianceContext):
    """Exact gradients: C = 0."""
    return 0 * ctx.eye


def update(ctx: CovarianceContext):
    """Isotropic update noise θ += N(0, σ²I): C = σ²I."""
    return ctx.hyper["sigma"] ** 2 * ctx.eye


def gradient(ctx: CovarianceContext):
    """Gradient noise g += N(0, σ_g²I), moved by η: C = η²σ_g²I."""
    return ctx.eta**2 * ctx.hyper["sigma"] ** 2 * ctx.eye


def label(ctx: CovarianceContext):
    """Gaussian label noise r_i → r_i − ε_i, ε ~ N(0, σ²): C = 2κη²σ²H."""
    return 2 * ctx.kappa * ctx.eta**2 * ctx.hyper["sigma"] ** 2 * ctx.H


def uniform_label(ctx: CovarianceContext):
    """Uniform label noise of width w: as label noise with σ² = w²/12."""
    return 2 * ctx.kappa * ctx.eta**2 * (ctx.hyper["width"] ** 2 / 12) * ctx.H


def sed(ctx: CovarianceContext):
    """Stochastic error descent θ −= μ π [L(θ+π) − L(θ)], π ~ N(0, s²I), on Γ.

    On Γ the step is −μ π (½ πᵀHπ) to leading order; by Isserlis' theorem its
    covariance is μ² s⁶/4 [((tr H)² + 2 tr H²) I + 4 tr H · H + 8 H²]. (The
    trace is written as a sum of diagonal entries so SymPy and arrays agree.)
    """
    H, eye, s = ctx.H, ctx.eye, ctx.hyper["sigma"]
    n = H.shape[0]
    trH = sum(H[i, i] for i in range(n))
    H2 = H @ H
    trH2 = sum(H2[i, i] for i in range(n))
    return ctx.eta**2 * s**6 / 4 * ((trH**2 + 2 * trH2) * eye + 4 * trH * H + 8 * H2)


#: noise name → covariance function
BY_NAME = {
    "none": none,
    "update": update,
    "gradient": gradient,
    "label": label,
    "uniform-label": uniform_label,
    "sed": sed,
}

#: noise name → the key of ``hyper`` that the CLI's --sigma fills
SIGMA_KEY = {"none": "sigma", "update": "sigma", "gradient": "sigma", "label": "sigma",
             "uniform-label": "width", "sed": "sigma"}
