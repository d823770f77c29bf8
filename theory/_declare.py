"""What components declare to the theory: a noise model's covariance, a learner's step law.

The theory never looks a component up by name. A noise model hands it
``covariance(ctx) -> C(θ)``, the per-step covariance of the parameter noise it
causes in a gradient step of size ``ctx.eta``; a learner hands it a
:class:`LearnerTheory` (its effective step size, the covariance of its own
randomness, and a potential its mean step descends besides L). A
:class:`StepLaw` bundles the two; every prediction is computed from it.

The same covariance function serves SymPy (closed forms) and arrays (NumPy,
JAX), so write it with ``*``, ``+``, ``@``, ``**`` of the context's fields and
its helpers ``diag``, ``trace``, ``vector`` — never ``np.``/``jnp.`` directly.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping, Optional

import numpy as np
import sympy as sp


@dataclasses.dataclass(frozen=True)
class CovarianceContext:
    """Everything a covariance (or potential) may depend on, at one point θ.

    ``H`` curvature at θ (on Γ the Hessian, = 2κJᵀJ for a sum of squares);
    ``dH`` its derivatives (``dH[k] = ∂H/∂θ_k``); ``J`` the residual Jacobian
    (None without residuals); ``theta`` the point (a SymPy column of symbols, or
    a 1-D array); ``eye`` the identity; ``eta`` the learner's effective step
    size; ``kappa`` the loss prefactor; ``hyper`` the component's own
    hyperparameters; ``backend`` "sympy", "numpy" or "jax"; ``derivative`` (where
    the engine can give it: a learner's ``regime`` hook in ``predict``) a callable
    k ↦ ∇ᵏL at θ, a (d, …, d) array, for warnings about terms the leading order
    leaves out.

    Vectors (``theta``, ``vector(...)``) are SymPy columns (d, 1) but 1-D arrays
    (d,) otherwise: build matrices from them with ``outer``/``diag``, index or
    iterate them — ``v @ v.T`` means different things in the two worlds (the
    conformance kit evaluates a covariance in every backend and compares).
    """

    H: Any
    eye: Any
    eta: Any
    kappa: Any
    hyper: Mapping[str, Any]
    J: Any = None
    theta: Any = None
    dH: Any = None
    backend: str = "numpy"
    derivative: Any = None

    def _xp(self):
        if self.backend == "jax":
            import jax.numpy as jnp

            return jnp
        return np

    def diag(self, values):
        """A diagonal matrix with ``values`` (any sequence of scalars) on its diagonal."""
        if self.backend == "sympy":
            return sp.diag(*list(values))
        xp = self._xp()
        return xp.diag(xp.stack([xp.asarray(v) for v in values]))

    def trace(self, M):
        """tr M."""
        if self.backend == "sympy":
            return sp.Matrix(M).trace()
        return self._xp().trace(M)

    def outer(self, u, v=None):
        """u vᵀ (u uᵀ without v) for two vectors, the same in every backend."""
        v = u if v is None else v
        if self.backend == "sympy":
            return sp.Matrix(list(u)) * sp.Matrix(list(v)).T
        xp = self._xp()
        return xp.outer(xp.asarray(u), xp.asarray(v))

    def vector(self, values):
        """A vector (SymPy column or 1-D array) from a sequence of scalars."""
        if self.backend == "sympy":
            return sp.Matrix(list(values))
        xp = self._xp()
        return xp.stack([xp.asarray(v) for v in values])

    def normal_displacement(self, g):
        """δ = H⁺g, the displacement off Γ along the normals whose gradient is g (arrays only): what a
        ``gradient_covariance(ctx, g)`` reads to know where a residual row stands off Γ."""
        return self._H_pinv @ g

    @functools.cached_property
    def _H_pinv(self):
        """H⁺ once per context (the finite-η rule asks K(g) for several g). By eigh, as the normal split
        does: a batched SVD (pinv) inside the simulator's compiled loop deadlocked XLA's CPU threads at
        ≥ 2048 chains."""
        xp = self._xp()
        lam, U = xp.linalg.eigh(xp.asarray(self.H))
        keep = lam > 1e-9 * xp.max(xp.abs(lam))
        return (U * xp.where(keep, 1.0 / xp.where(keep, lam, 1.0), 0.0)) @ U.T

    def grad_trace_H(self):
        """∇ tr H = (tr ∂_k H)_k — the gradient of the label-noise regularizer."""
        return self.vector([self.trace(M) for M in self.dH])


def _lr(hyper):
    return hyper["lr"]


@dataclasses.dataclass(frozen=True, eq=False)
class LearnerTheory:
    """A learner's step near Γ, as the theory needs it.

    The mean step is −lr(h)·∇(L + U) on Γ, plus zero-mean noise whose
    covariance adds to the noise model's. ``lr(hyper)`` is the effective step
    size (gradient descent: ``hyper["lr"]``); noise models state their
    covariance for a gradient step of that size. ``covariance(ctx)`` is the
    covariance of the learner's own randomness (``ctx.hyper`` = the learner's
    hyperparameters; None if it has none). ``potential(ctx)`` is U (None if
    the mean step is plain gradient descent on L). ``uses_gradient`` is False
    for learners that never ask the oracle for a gradient (noise added to the
    gradient then does not reach them). ``finite_eta`` says whether the
    finite-η (discrete Lyapunov) form applies to this learner's potential part.
    ``gradient_covariance(ctx, g)`` is the part of the step's covariance that
    grows with the gradient g = ∇L(θ) off Γ, a quadratic form in g (None: none).
    It is zero on Γ but feeds the normal fluctuations at finite η: a learner
    whose step is −η g plus noise ∝ (π·g) fluctuates more than gradient descent.
    Arrays only (NumPy/JAX contexts; g a 1-D array). ``regime(ctx)`` returns
    warnings (strings) where the declaration itself is known to be inaccurate at
    this point and these hyperparameters (NumPy context on Γ; None: none).
    """

    lr: Callable[[Mapping], Any] = _lr
    covariance: Optional[Callable[[CovarianceContext], Any]] = None
    potential: Optional[Callable[[CovarianceContext], Any]] = None
    uses_gradient: bool = True
    finite_eta: bool = True
    gradient_covariance: Optional[Callable[[CovarianceContext, Any], Any]] = None
    regime: Optional[Callable[[CovarianceContext], list]] = None


GRADIENT_DESCENT = LearnerTheory()


def declares_growth(noise) -> bool:
    """Whether a noise model declares a covariance that grows off Γ (``gradient_covariance(ctx, g)``)."""
    overrides = getattr(noise, "overrides", None)
    return callable(getattr(noise, "gradient_covariance", None)) and (overrides is None
                                                                     or overrides("gradient_covariance"))


@dataclasses.dataclass(frozen=True, eq=False)
class StepLaw:
    """One learner with one noise model, as the theory sees them.

    ``noise`` is any object with ``covariance(ctx)`` (C or None), ``hyper``
    (defaults) and optionally ``needs_residuals``; None means exact gradients.
    ``learner_hyper`` are the learner's default hyperparameters. Predictions
    take hyperparameters in the simulator's layout
    ``{"learner": {...}, "noise": {...}}``, merged over these defaults.
    """

    noise: Any = None
    learner: LearnerTheory = GRADIENT_DESCENT
    learner_hyper: Mapping[str, float] = dataclasses.field(default_factory=lambda: {"lr": 0.05})
    name: str = "noise"
    learner_name: str = ""   # for messages about the learner's declarations ("" : "the learner")

    @property
    def needs_residuals(self) -> bool:
        return bool(getattr(self.noise, "needs_residuals", False))

    def defaults(self) -> dict:
        noise = dict(getattr(self.noise, "hyper", {}) or {}) if self.noise is not None else {}
        return {"learner": dict(self.learner_hyper), "noise": noise}

    def resolve(self, hyper: Optional[Mapping] = None) -> dict:
        """Defaults overridden by ``hyper`` (same layout); unknown keys are an error."""
        out = self.defaults()
        for part, values in (hyper or {}).items():
            if part not in out:
                raise KeyError(f"hyperparameters come as {{'learner': ..., 'noise': ...}}, got part {part!r}")
            unknown = sorted(set(values) - set(out[part]))
            if unknown:
                known = ", ".join(sorted(out[part])) or "none"
                raise KeyError(f"unknown {part} hyperparameter(s) {', '.join(unknown)} (known: {known})")
            out[part].update(values)
        return out
