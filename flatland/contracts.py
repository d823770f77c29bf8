"""Component contracts: what every plugin of each kind must supply.

This is the one place that says what a loss, a noise model, a learner, a metric
and a check are. Everything here is plain data or pure JAX functions, so the
simulator can trace them once under ``jit(vmap(scan))``. Plugins are looked up
by name while *assembling* a run; nothing in this module is called from inside
traced code except the pure functions the components carry.

Conventions
-----------
* ``params`` is any JAX pytree (a 1-D array of coordinates for a valley, a dict
  of weight matrices for a network).
* ``hyper`` is a flat ``dict[str, jax.Array]`` of hyperparameters. They are array
  *leaves*, never Python floats baked into closures, so a sweep over them is one
  ``vmap`` and a second call with new values does not recompile. They have the
  params' floating dtype, so a float32 network stays float32.
* Keys are explicit ``jax.random`` keys; seeds are a ``vmap`` axis.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from flatland.theory import CovarianceContext, LearnerTheory

Params = Any
Hyper = Mapping[str, Any]
KINDS = ("losses", "noise", "learners", "metrics", "checks", "run_extensions")


def _finite_numbers(values) -> bool:
    """True for a sequence of finite real numbers (not a string, not booleans)."""
    if isinstance(values, (str, bytes)):
        return False
    try:
        return all(not isinstance(v, (str, bytes, bool)) and math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


@dataclasses.dataclass(frozen=True)
class Loss:
    """A loss L(θ), usually κ Σ_i r_i(θ)², given as pure JAX functions.

    ``residuals(params)`` returns the residuals with the data examples along the
    leading axis (a minibatch selects rows of it; label noise shifts it). When
    only ``value`` is given, the loss is not a sum of squares and label noise is
    unavailable. ``expr``/``residual_exprs`` are optional strings in flatland's
    safe expression grammar that ``flatland.theory`` parses for symbolic work.
    ``point`` is a point on (or near) the zero-loss manifold for 1-D ``params``;
    ``init(key)`` draws initial params for networks. ``extras`` carries
    task-specific data (inputs, targets, positions for rate maps, ...).
    """

    name: str
    residuals: Optional[Callable[[Params], jax.Array]] = None
    kappa: float = 0.5
    value: Optional[Callable[[Params], jax.Array]] = None
    variables: tuple[str, ...] = ()
    expr: Optional[str] = None
    residual_exprs: Optional[tuple[str, ...]] = None
    point: Optional[tuple[float, ...]] = None
    init: Optional[Callable[[jax.Array], Params]] = None
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.residuals is None and self.value is None:
            raise ValueError(f"loss {self.name!r} needs residuals or value")
        if self.point is not None and not _finite_numbers(self.point):
            raise ValueError(f"loss {self.name!r}: point must be a list of finite numbers, one per variable, got "
                             f"{self.point!r}")
        if self.point is not None and self.variables and len(self.point) != len(self.variables):
            raise ValueError(f"point has {len(self.point)} coordinates; loss {self.name!r} has "
                             f"{len(self.variables)} variables ({', '.join(self.variables)})")

    def __call__(self, params: Params) -> jax.Array:
        """L(θ): ``value`` if given, else κ Σ r²."""
        if self.value is not None:
            return self.value(params)
        r = self.residuals(params)
        return self.kappa * jnp.sum(r * r)

    @property
    def has_residuals(self) -> bool:
        return self.residuals is not None

    def initial_params(self, key: jax.Array) -> Params:
        """``init(key)`` when given, else ``point`` as a float array."""
        if self.init is not None:
            return self.init(key)
        if self.point is None:
            raise ValueError(f"loss {self.name!r} has neither init nor point")
        return jnp.asarray(self.point, dtype=jnp.result_type(float))


class NoiseModel:
    """How a noise model perturbs one learner step, and what it declares about it.

    A step of the simulator is: the learner asks the oracle for the gradient of
    ``objective`` (label noise and minibatches act here); the gradient passes
    ``perturb_grad`` (gradient noise); the learner moves; the new params pass
    ``perturb_params`` (update noise). Override what applies. A model that
    changes the objective by changing the loss for one step (noisy targets,
    a minibatch of rows) should override ``transform(loss, key, hyper) -> Loss``
    rather than ``objective``: transforms chain, so such models compose
    (``flatland.compose_noise``).

    Declarations (the engine and the theory ask these; nothing looks at ``name``):

    * ``covariance(ctx)`` — the per-step covariance C(θ) of the parameter noise
      this model causes in a gradient step of size ``ctx.eta`` (see
      :class:`flatland.theory.CovarianceContext`); the theory's only source of
      C. None: no prediction.
    * ``gradient_covariance(ctx, g)`` — the part of that covariance which grows
      off Γ, as a quadratic form in the gradient g = ∇L(θ) ≈ Hδ at a normal
      displacement δ (arrays only; ``ctx`` at the point of Γ). It is zero on Γ
      but not where update or label noise keeps the chains: the theory averages
      it over their normal fluctuations at finite η. Minibatch noise on rows that
      are all fitted is the example (C = 0 on Γ). None (the default): none.
    * ``grad_cov(loss, params, hyper)`` — exact covariance of the oracle's
      gradient (its mean must be the exact ∇L), and ``param_cov(params, hyper)``
      — covariance added to the params after the move: the conditional moments
      the Rao–Blackwellised estimator needs. The defaults are exact zeros for
      the parts a subclass does not override, None ("unknown") otherwise.
    * ``needs_residuals`` — the model acts on residuals (label noise, minibatches).
    * ``upstream_gain(ctx)`` — for a model that reweights residual rows (a
      minibatch): the factor by which it multiplies the covariance of noise that
      members composed before it put into the rows, independently per row (label
      noise): the rows' weights s_i enter that covariance as E[s_i⁴]. None (the
      default): the composition of such a pair states no covariance.
    * ``requires`` — the ``loss.extras`` keys it needs (a network's data).
    * ``scale`` — the hyperparameter that a command line's ``--sigma`` sets
      (a model with a single hyperparameter needs not declare it).
    * ``positive`` — hyperparameters that must be > 0 (a rate or a time
      constant where 0 means a division by zero): a user's 0 is a one-line error.

    ``hyper`` holds the default hyperparameters.
    """

    name: str = "none"
    hyper: Mapping[str, float] = {}
    positive: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    needs_residuals: bool = False
    scale: str = "sigma"

    def transform(self, loss: Loss, key: jax.Array, hyper: Hyper) -> Loss:
        """The loss as this step sees it (default: unchanged)."""
        return loss

    def objective(self, loss: Loss, key: jax.Array, params: Params, hyper: Hyper) -> jax.Array:
        """The (possibly noisy) loss whose gradient the learner follows: the transformed loss at params."""
        return self.transform(loss, key, hyper)(params)

    def perturb_grad(self, key: jax.Array, grad: Params, hyper: Hyper) -> Params:
        return grad

    def perturb_params(self, key: jax.Array, params: Params, hyper: Hyper) -> Params:
        return params

    def covariance(self, ctx: CovarianceContext) -> Any:
        return None

    def gradient_covariance(self, ctx: CovarianceContext, g) -> Any:
        return None

    def upstream_gain(self, ctx: CovarianceContext) -> Any:
        return None

    def scale_key(self):
        """The hyperparameter ``--sigma`` sets: ``scale`` if it is one, else the only one, else None."""
        if self.scale in self.hyper:
            return self.scale
        return next(iter(self.hyper)) if len(self.hyper) == 1 else None

    def overrides(self, method: str) -> bool:
        """Whether this model overrides ``method`` of the base contract (e.g. "perturb_grad")."""
        return getattr(type(self), method) is not getattr(NoiseModel, method)

    def grad_cov(self, loss: Loss, params: Params, hyper: Hyper) -> Any:
        if self.overrides("objective") or self.overrides("transform") or self.overrides("perturb_grad"):
            return None
        d = ravel_pytree(params)[0].shape[0]
        return jnp.zeros((d, d))

    def param_cov(self, params: Params, hyper: Hyper) -> Any:
        if self.overrides("perturb_params"):
            return None
        d = ravel_pytree(params)[0].shape[0]
        return jnp.zeros((d, d))

    def __repr__(self) -> str:
        return f"<noise {self.name} {dict(self.hyper)}>"


@dataclasses.dataclass(frozen=True)
class StepMoments:
    """A learner's exact conditional step moments, for the Rao–Blackwellised estimator.

    Declare ``gradient_gain`` or ``own``. ``gradient_gain(hyper)``: the step is
    affine in the oracle's gradient g, Δθ = Δθ(∇L) − gain·(g − ∇L), plus
    zero-mean noise of the learner's own with covariance ``own_cov(params,
    hyper)`` (None: no own noise); the engine takes the exact mean step from
    ``step`` with the exact oracle — or, for a learner with own noise, from
    ``mean_step(params, state, hyper, oracle) -> params`` (its step without
    that noise) — and the covariance from the noise model's ``grad_cov``/``param_cov``. ``own(loss, params, state, hyper)``:
    the learner computes (mean (d,), cov (d, d)) of its displacement θ' − θ itself, with
    an exact objective (stochastic error descent by quadrature); it then
    composes only with noise models that leave the objective and gradient alone.
    """

    gradient_gain: Optional[Callable[[Hyper], Any]] = None
    own: Optional[Callable[..., tuple]] = None
    own_cov: Optional[Callable[[Params, Hyper], Any]] = None
    mean_step: Optional[Callable[..., Params]] = None

    def __post_init__(self):
        if (self.gradient_gain is None) == (self.own is None):
            raise ValueError("StepMoments declares exactly one of gradient_gain and own")
        if self.own is not None and (self.own_cov is not None or self.mean_step is not None):
            raise ValueError("StepMoments: own moments already include the learner's own noise")
        if self.own_cov is not None and self.mean_step is None:
            raise ValueError("StepMoments: a learner with own_cov also declares mean_step (its step without that noise)")


class Oracle(NamedTuple):
    """Pure functions a learner may call: the (noisy) loss and its gradient."""

    value: Callable[[jax.Array, Params], jax.Array]
    grad: Callable[[jax.Array, Params], Params]


class Learner(NamedTuple):
    """An ``init``/``step`` pair in the optax/blackjax style, with optional declarations.

    ``init(params, hyper) -> state``;
    ``step(key, params, state, hyper, oracle) -> (params, state, info)`` with
    ``info`` a dict of scalars. ``hyper`` holds default hyperparameters (at
    least ``lr``); the simulator passes them as array leaves.

    ``theory`` (a :class:`flatland.theory.LearnerTheory`) tells the theory how
    the learner moves near Γ (effective step, own noise, potential); None: no
    prediction. ``moments`` (a :class:`StepMoments`) gives the estimator its
    exact conditional step; None: drift is measured by raw displacement.
    ``positive`` names the hyperparameters that must be > 0 (a user's 0 or less
    is a one-line error before anything runs): the step size, and e.g. a time
    constant the step divides by.
    """

    name: str
    init: Callable[[Params, Hyper], Any]
    step: Callable[..., tuple[Params, Any, dict]]
    hyper: Mapping[str, float]
    theory: Optional[LearnerTheory] = None
    moments: Optional[StepMoments] = None
    positive: tuple[str, ...] = ("lr",)


@dataclasses.dataclass(frozen=True)
class Metric:
    """A quantity logged on a schedule inside the compiled loop.

    ``fn(params, loss)`` is pure JAX and returns an array (or pytree). ``every``
    is the default logging period in steps. ``requires`` names the
    ``loss.extras`` keys it reads (empty when it works on any loss).
    """

    name: str
    fn: Callable[[Params, Loss], Any]
    every: int = 100
    requires: tuple[str, ...] = ()


@dataclasses.dataclass
class CheckResult:
    """One verdict: a declared prediction, a measured statistic, a tolerance.

    ``statistic`` says what was measured and how (estimator, over what);
    ``tolerance`` says the pass rule in words; ``ratio``/``ratio_stderr`` are
    measured/predicted where that makes sense. ``passed`` None: measured with nothing to judge it
    against (no prediction); it counts as not passed.
    """

    name: str
    statistic: str
    predicted: float
    measured: float
    stderr: float
    tolerance: str
    passed: Optional[bool]
    ratio: Optional[float] = None
    ratio_stderr: Optional[float] = None
    leading: Optional[float] = None
    warnings: list = dataclasses.field(default_factory=list)
    details: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class CheckContext:
    """What a check receives: the run's ``seed``, its results folder ``out``
    (a ``flatland.results.ResultsFolder`` with ``landscape``/figure helpers, or
    None), the ``registry`` of this assembly and a shared :class:`flatland.Lab`
    (``lab``, built on first use), so checks in one suite share components and
    compiled simulators."""

    seed: int = 0
    out: Any = None
    registry: Any = None
    _lab: Any = None

    @property
    def lab(self):
        if self._lab is None:
            from .lab import Lab

            self._lab = Lab(self.registry)
        return self._lab


@dataclasses.dataclass(frozen=True)
class Check:
    """A named check in a suite: ``run(ctx: CheckContext) -> list[CheckResult]``.

    ``suite`` groups checks for ``flatland check --suite NAME``.
    """

    name: str
    run: Callable[[dict], list]
    suite: str = "valleys"
