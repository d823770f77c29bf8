"""Built-in toy valleys: small losses with a known zero-loss manifold Γ.

Each valley is a sum of squares L = κ Σ r_i², given three ways that must agree:
JAX residuals (for simulation), residual expressions and a loss expression in
flatland's safe grammar (for ``flatland.theory``). ``point`` lies on Γ.
"""
import jax.numpy as jnp

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
}


@hookimpl
def flatland_losses(register):
    for name, (factory, summary) in VALLEYS.items():
        register(name, factory, summary)
