"""Built-in toy valleys: small losses with a known zero-loss manifold Γ.

Each valley is a sum of squares L = κ Σ r_i², given three ways that must agree:
JAX residuals (for simulation), residual expressions and a loss expression in
flatland's safe grammar (for ``flatland.theory``). ``point`` lies on Γ.
``periodic`` (x is an angle) serves the stationary-density check, ``hyperbola``
(a curved Γ) the Itô-term check, ``fig5a-targets`` the minibatch check.
"""
import math

import jax.numpy as jnp
import numpy as np

from flatland import Loss, hookimpl


def _valley(name, variables, residual_exprs, kappa, residuals, point, expr):
    def factory(point=point):
        return Loss(
            name=name, residuals=residuals, kappa=kappa, variables=variables,
            expr=expr, residual_exprs=residual_exprs, point=tuple(float(p) for p in point),
        )
    return factory


VALLEYS = {
    "fig5a": (
        _valley("fig5a", ("x", "y"), ("x*y",), 1.0,
                lambda t: jnp.stack([t[0] * t[1]]), (1.0, 0.0), "(x*y)**2"),
        "the paper's Fig 5A valley L = (x*y)**2; Γ: y = 0, flat toward x → 0",
    ),
    "half-x2y2": (
        _valley("half-x2y2", ("x", "y"), ("x*y",), 0.5,
                lambda t: jnp.stack([t[0] * t[1]]), (1.0, 0.0), "0.5*x**2*y**2"),
        "L = 0.5*x**2*y**2; Γ: y = 0, curvature x²",
    ),
    "stretched": (
        _valley("stretched", ("x", "y"), ("(1 + x**2)*y",), 0.5,
                lambda t: jnp.stack([(1 + t[0] ** 2) * t[1]]), (1.0, 0.0), "0.5*(1 + x**2)**2*y**2"),
        "L = 0.5*(1+x**2)**2*y**2; Γ: y = 0, curvature (1+x²)², flattest at x = 0",
    ),
    "opposite-3d": (
        _valley("opposite-3d", ("x", "y", "z"), ("x*y", "(3 - x)*z"), 0.5,
                lambda t: jnp.stack([t[0] * t[1], (3 - t[0]) * t[2]]), (1.0, 0.0, 0.0),
                "0.5*((x*y)**2 + ((3 - x)*z)**2)"),
        "3-D valley, Γ: y = z = 0, curvatures x² and (3-x)²: update and label noise drift opposite ways at x = 1",
    ),
    "periodic": (
        _valley("periodic", ("x", "y"), ("(2 + cos(x))*y",), 0.5,
                lambda t: jnp.stack([(2 + jnp.cos(t[0])) * t[1]]), (0.0, 0.0), "0.5*(2 + cos(x))**2*y**2"),
        "L = 0.5*(2+cos x)**2*y**2, x periodic; Γ: y = 0; update noise: stationary density ∝ 1/(2+cos x)",
    ),
    "hyperbola": (
        _valley("hyperbola", ("x", "y"), ("x*y - 1",), 0.5,
                lambda t: jnp.stack([t[0] * t[1] - 1]), (2.0, 0.5), "0.5*(x*y - 1)**2"),
        "L = 0.5*(x*y-1)**2; curved Γ: xy = 1 (for q = x²-y² update-noise drift and Itô term cancel)",
    ),
}


def standard_targets(n_rows: int, s: float) -> np.ndarray:
    """n deterministic targets with mean exactly 0 and population variance exactly s² (normal quantiles)."""
    from statistics import NormalDist

    z = np.array([NormalDist().inv_cdf((i + 0.5) / n_rows) for i in range(n_rows)])
    z = z - z.mean()
    return s * z / math.sqrt(np.mean(z * z))


def noisy_targets(n_rows: int = 64, s: float = 0.2, point=(1.0, 0.0)) -> Loss:
    """Fig 5A with data: rows r_i = x·y − t_i, κ = 1/N, targets t_i of mean 0 and variance s².

    L = (x·y)² + s², so Γ (its minimum set) is x·y = 0 as in Fig 5A but L = s² there.
    Minibatch SGD with batch B sees the residual x·y − mean(t_batch): label
    noise on Fig 5A's residual with σ² = s²/B (rows drawn with replacement).
    No expression is attached: the theory of this loss is Fig 5A's.
    """
    if int(n_rows) < 2 or not s > 0:
        raise ValueError("fig5a-targets needs n_rows ≥ 2 and s > 0")
    t = jnp.asarray(standard_targets(int(n_rows), float(s)))
    return Loss(
        name="fig5a-targets", residuals=lambda p: p[0] * p[1] - t, kappa=1.0 / int(n_rows), variables=("x", "y"),
        point=tuple(float(p) for p in point), extras={"targets": t, "s": float(s), "theory_loss": "fig5a"},
    )


@hookimpl
def flatland_losses(register):
    for name, (factory, summary) in VALLEYS.items():
        register(name, factory, summary)
    register("fig5a-targets", noisy_targets,
             "Fig 5A fitted to N rows of noisy targets (options n_rows, s): for minibatch SGD ≡ label noise s²/B")
