"""The conformance kit: contract checks every component must pass.

Plugin authors call these from their own tests (or use the pytest fixtures in
:mod:`flatland.testing.pytest_plugin`); flatland runs them on every registered
component. Each ``check_*`` raises ``AssertionError`` with a message naming the
component and the broken property:

* jit-able, and vmap-able over keys and over hyperparameters;
* no recompilation on a second call with new keys and hyperparameter values;
* pytree structure and dtypes preserved by a step;
* no NaN/inf on a small smoke problem;
* declarations (covariances, step moments) true to the component's behaviour
  (:mod:`flatland.testing.declarations`).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..contracts import Learner, Loss, Metric, NoiseModel
from ..stepping import as_hyper, make_step
from .declarations import (check_covariance_consistency, check_upstream_gain, check_learner_declarations, check_learner_potential,
                           check_noise_declarations)

# The fixed smoke problem: a dict-of-arrays valley L = ½ Σ (w·b-product)², so
# that steps are exercised on a real pytree with two leaf shapes.
SMOKE_POINT = {"w": jnp.array([1.0, 0.5], dtype=float), "b": jnp.array(0.05, dtype=float)}


def _one_line(kind: str):
    """The kit's promise for ``check_*(component, ...)``: an AssertionError with a one-line reason naming the
    component, also where the component's own code raised (a step returning two values, a vector loss)."""
    def wrap(check):
        @functools.wraps(check)
        def checked(component, *args, **kwargs):
            try:
                return check(component, *args, **kwargs)
            except AssertionError:
                raise
            except Exception as exc:  # noqa: BLE001 - the component's code: its author needs the reason, not a crash
                name = getattr(component, "name", type(component).__name__)
                first = str(exc).splitlines()[0] if str(exc) else ""
                raise AssertionError(f"{kind} {name}: calling it raised {type(exc).__name__}: {first}") from exc
        return checked
    return wrap


def smoke_loss() -> Loss:
    """A small sum-of-squares loss on dict params, near (not on) its manifold."""

    def residuals(p):
        return jnp.stack([p["w"][0] * p["b"], p["w"][1] * p["b"] + 0.1 * p["b"] ** 2])

    return Loss(name="smoke", residuals=residuals, kappa=0.5, init=lambda key: SMOKE_POINT)


def _assert_same_structure(name, a, b):
    ta, tb = jax.tree_util.tree_structure(a), jax.tree_util.tree_structure(b)
    assert ta == tb, f"{name}: pytree structure changed by a step ({ta} -> {tb})"
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert jnp.shape(x) == jnp.shape(y), f"{name}: leaf shape changed {jnp.shape(x)} -> {jnp.shape(y)}"
        assert jnp.result_type(x) == jnp.result_type(y), f"{name}: dtype changed {jnp.result_type(x)} -> {jnp.result_type(y)}"


def _assert_finite(name, tree, what):
    for x in jax.tree_util.tree_leaves(tree):
        assert bool(jnp.all(jnp.isfinite(x))), f"{name}: non-finite {what} on the smoke problem"


def _scaled(hyper, factor):
    return {k: {kk: vv * factor for kk, vv in v.items()} for k, v in hyper.items()}


def check_step(name: str, loss: Loss, noise: NoiseModel, learner: Learner, n_chains: int = 3) -> None:
    """The composed step jits once, vmaps over keys and hypers, keeps structure, stays finite."""
    params = loss.initial_params(jax.random.PRNGKey(0))
    dtype = jnp.result_type(jax.tree_util.tree_leaves(params)[0])  # hyper leaves follow the params' dtype
    hyper = {"learner": as_hyper(learner.hyper, dtype=dtype), "noise": as_hyper(noise.hyper, dtype=dtype)}
    state = learner.init(params, hyper["learner"])
    step = make_step(loss, noise, learner)
    traces = []

    def counted(key, p, s, h):
        traces.append(1)
        return step(key, p, s, h)

    jstep = jax.jit(counted)
    p1, s1, info = jstep(jax.random.PRNGKey(1), params, state, hyper)
    assert isinstance(info, dict) and all(jnp.ndim(v) == 0 for v in info.values()), (
        f"{name}: a step's info must be a dict of scalars, got "
        + (", ".join(f"{k} of shape {jnp.shape(v)}" for k, v in info.items() if jnp.ndim(v))
           if isinstance(info, dict) else type(info).__name__))
    _assert_same_structure(name, params, p1)
    _assert_same_structure(name + " (state)", state, s1)
    _assert_finite(name, p1, "params")
    p2, s2, _ = jstep(jax.random.PRNGKey(2), p1, s1, _scaled(hyper, 0.5))
    _assert_finite(name, p2, "params after a second step")
    assert len(traces) == 1, f"{name}: recompiled on the second call ({len(traces)} traces); hyperparameters must be array leaves"

    keys = jax.random.split(jax.random.PRNGKey(3), n_chains)
    batch = lambda tree: jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (n_chains,) + jnp.shape(x)), tree)
    pv, _, _ = jax.jit(jax.vmap(step, in_axes=(0, 0, 0, None)))(keys, batch(params), batch(state), hyper)
    _assert_finite(name + " (vmap over keys)", pv, "params")
    if jax.tree_util.tree_leaves(hyper):  # a component without hyperparameters has no grid to sweep
        grid = jax.tree_util.tree_map(lambda x: jnp.stack([x, 0.5 * x, 0.25 * x]), hyper)
        ph, _, _ = jax.jit(jax.vmap(step, in_axes=(None, None, None, 0)))(keys[0], params, state, grid)
        _assert_finite(name + " (vmap over hyperparameters)", ph, "params")
        leaf = jax.tree_util.tree_leaves(ph)[0]
        assert leaf.shape[0] == 3, f"{name}: vmap over a hyperparameter grid lost its axis"


def reference_gd() -> Learner:
    """Plain gradient descent, the kit's reference learner for checking noise models."""

    def step(key, params, state, hyper, oracle):
        g = oracle.grad(key, params)
        return jax.tree_util.tree_map(lambda p, d: p - hyper["lr"] * d, params, g), state, {}

    return Learner("reference-gd", lambda params, hyper: (), step, {"lr": 0.05})


@_one_line("learner")
def check_learner(learner: Learner, loss: Loss | None = None, noise: NoiseModel | None = None) -> None:
    """A learner's contract and declarations, run with exact gradients on the smoke problem (or ``loss``)."""
    assert isinstance(learner, Learner), f"learner factory returned {type(learner).__name__}, not flatland.Learner"
    assert not learner.hyper or "lr" in learner.hyper, (   # none at all: fixed inside (a ready optax chain)
        f"learner {learner.name}: hyperparameters {', '.join(learner.hyper)} but no 'lr'; flatland's step size is "
        "named 'lr' — `flatland check --eta`, configs and sweeps set it")
    _check_positive(f"learner {learner.name}", learner.positive if learner.hyper else (), learner.hyper)
    check_step(f"learner {learner.name}", loss or smoke_loss(), noise or NoiseModel(), learner)
    check_learner_declarations(learner, loss or smoke_loss())
    check_learner_potential(learner, smoke_loss(), {"w": SMOKE_POINT["w"], "b": jnp.zeros_like(SMOKE_POINT["b"])})


def _check_positive(who: str, positive, hyper) -> None:
    """``positive`` names hyperparameters, each with a default > 0 (a misspelt name would check nothing)."""
    unknown = [k for k in positive if k not in hyper]
    assert not unknown, (f"{who}: positive names {', '.join(map(repr, unknown))}, not a hyperparameter "
                         f"(its hyperparameters: {', '.join(hyper) or 'none'})")
    bad = [k for k in positive if not float(hyper[k]) > 0]
    assert not bad, f"{who}: {', '.join(bad)} declared positive but defaults to {', '.join(str(hyper[k]) for k in bad)}"


@_one_line("noise")
def check_noise(noise: NoiseModel, loss: Loss | None = None, learner: Learner | None = None) -> None:
    """A noise model's contract and declarations, run under plain GD on the smoke problem (or ``loss``)."""
    assert isinstance(noise, NoiseModel), f"noise factory returned {type(noise).__name__}, not flatland.NoiseModel"
    if loss is None and noise.requires:
        raise AssertionError(f"noise {noise.name} requires loss extras {', '.join(noise.requires)}: pass a loss that provides them")
    if loss is not None:
        missing = [k for k in noise.requires if k not in loss.extras]
        assert not missing, f"noise {noise.name}: loss {loss.name} lacks extras {', '.join(missing)}"
    _check_positive(f"noise {noise.name}", getattr(noise, "positive", ()), noise.hyper)
    check_step(f"noise {noise.name}", loss or smoke_loss(), noise, learner or reference_gd())
    check_noise_declarations(noise, loss or smoke_loss())
    if loss is None:  # the smoke problem's Γ is b = 0: there the declared C must be what a step does
        on_gamma = {"w": SMOKE_POINT["w"], "b": jnp.zeros_like(SMOKE_POINT["b"])}
        check_covariance_consistency(noise, smoke_loss(), on_gamma)
        check_upstream_gain(noise, smoke_loss(), on_gamma)


@_one_line("loss")
def check_loss(loss: Loss) -> None:
    """A loss jits, has a finite gradient, and agrees with κ Σ r² when it has residuals."""
    assert isinstance(loss, Loss), f"loss factory returned {type(loss).__name__}, not flatland.Loss"
    params = loss.initial_params(jax.random.PRNGKey(0))
    value, grad = jax.jit(jax.value_and_grad(loss))(params)
    assert jnp.shape(value) == (), f"loss {loss.name}: value must be a scalar, got shape {jnp.shape(value)}"
    _assert_finite(f"loss {loss.name}", (value, grad), "value or gradient")
    _assert_same_structure(f"loss {loss.name} (gradient)", params, grad)
    if loss.residuals is not None:
        assert jnp.ndim(loss.residuals(params)) >= 1, (
            f"loss {loss.name}: residuals(params) is a scalar; return the data examples along a leading axis "
            "(jnp.atleast_1d): minibatch noise picks rows of it and label noise shifts them")
    if loss.residuals is not None and loss.value is not None:
        r = loss.residuals(params)
        want = loss.kappa * jnp.sum(r * r)
        assert jnp.allclose(value, want, rtol=1e-10, atol=1e-14), f"loss {loss.name}: value {value} != κΣr² {want}"
    if (getattr(loss, "expr", None) or getattr(loss, "residual_exprs", None)) and loss.point is not None:
        from flatland.theory import Problem

        problem = Problem.from_loss(loss)   # the loss as the theory reads it, built once for both checks
        _check_expressions(loss, problem)
        _check_point_near_gamma(loss, problem)


def _check_point_near_gamma(loss: Loss, problem, reach: float = 0.1) -> None:
    """A loss's ``point`` is on or near Γ (the docs' promise; `check` and the strategies start there): the
    theory's projection from it must land within ``reach`` × (1 + |point|) (a point at residual 26 passed)."""
    import numpy as np

    from flatland.errors import UserError
    from flatland.theory import project

    p0 = np.asarray(loss.point, float)
    try:
        _, moved = project(problem, p0)
    except UserError as exc:
        raise AssertionError(f"loss {loss.name}: its point {p0.tolist()} is not near Γ: {exc}") from None
    assert moved <= reach * (1 + float(np.max(np.abs(p0)))), (
        f"loss {loss.name}: its point {p0.tolist()} is {moved:.3g} from the nearest point of Γ found; `point` must "
        "be on or near L = 0")


def _check_expressions(loss: Loss, problem, points: int = 5) -> None:
    """The theory reads a loss's formula (``expr``/``residual_exprs``, ``problem``), the simulator its
    functions: both must be one loss. Compared at the point and at ``points`` random points around it (rtol
    1e-10) — a valley whose JAX residual lost a factor while its expression kept it passed every test before."""
    import numpy as np

    from flatland.theory import jax_function

    formula = jax_function(problem, "loss")
    p0 = np.asarray(loss.point, float)
    rng = np.random.default_rng(0)
    for theta in [p0] + [p0 + rng.normal(0.0, 0.3, p0.shape) for _ in range(points)]:
        simulated, stated = float(loss(jnp.asarray(theta))), float(np.ravel(formula(jnp.asarray(theta)))[0])
        assert np.isclose(simulated, stated, rtol=1e-10, atol=1e-14 * max(1.0, abs(stated))), (
            f"loss {loss.name}: at θ = {theta.tolist()} its function gives {simulated:.12g} but its expression "
            f"({loss.expr or ', '.join(loss.residual_exprs)}) gives {stated:.12g}: the theory and the simulator "
            "would study different losses")


@_one_line("metric")
def check_metric(metric: Metric, loss: Loss | None = None) -> None:
    """A metric jits on the loss's initial params and returns finite values."""
    assert isinstance(metric, Metric), f"metric factory returned {type(metric).__name__}, not flatland.Metric"
    if loss is None and metric.requires:
        raise AssertionError(f"metric {metric.name} requires loss extras {', '.join(metric.requires)}: pass a loss that provides them")
    if loss is not None:
        missing = [k for k in metric.requires if k not in loss.extras]
        assert not missing, f"metric {metric.name}: loss {loss.name} lacks extras {', '.join(missing)}"
    loss = loss or smoke_loss()
    params = loss.initial_params(jax.random.PRNGKey(0))
    out = jax.jit(lambda p: metric.fn(p, loss))(params)
    _assert_finite(f"metric {metric.name}", out, "value")
    assert metric.every > 0, f"metric {metric.name}: every must be positive"
