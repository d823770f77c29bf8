"""An example third-party flatland plugin (entry point group ``flatland``).

It registers one component of every kind, each declaring what flatland asks:

* losses ``ring`` (½(x²+y²−1)², Γ the unit circle) and ``tilted``
  (½((1+x²/4)(y−x/2−1))², Γ the straight line y = x/2 + 1, sharper as |x| grows);
* noise model ``multiplicative``: θ ← θ + σ θ⊙ξ, whose covariance C(θ) =
  σ² diag(θ²) depends on the point — declared to the theory (``covariance``)
  and to the estimator (``param_cov``);
* learners ``noisy-gd`` (gradient descent with update noise of its own,
  declaring its theory and its step moments) and ``noisy-heavy-ball`` (heavy-ball
  momentum with update noise, declaring nothing: flatland measures it without a
  prediction and says why);
* metric ``radius`` (|θ|) and check ``multiplicative-tilted`` (suite ``example``):
  the drift under multiplicative noise against the theory's prediction (2%).

Install it with ``pip install ./examples/flatland-example-plugin``; it then
shows up in ``flatland list`` with its origin, and
``flatland check --loss tilted --at x=1,y=1.5 --noise multiplicative --learner noisy-gd --sigma 0.01``
compares its drift with the prediction.
"""
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from flatland import (Check, Learner, LearnerTheory, Loss, Metric, NoiseModel, StepMoments,
                      hookimpl)


def _normals_like(key, tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(
        treedef, [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves)])


class MultiplicativeNoise(NoiseModel):
    """θ ← θ + σ θ⊙ξ after each step, ξ ~ N(0, I): noise proportional to each parameter's size."""

    name = "multiplicative"
    hyper = {"sigma": 0.02}

    def perturb_params(self, key, params, hyper):
        xi = _normals_like(key, params)
        return jax.tree_util.tree_map(lambda p, n: p + hyper["sigma"] * p * n, params, xi)

    def param_cov(self, params, hyper):
        flat = ravel_pytree(params)[0]
        return hyper["sigma"] ** 2 * jnp.diag(flat**2)

    def covariance(self, ctx):
        """C(θ) = σ² diag(θ²), written with the context's helpers so SymPy and arrays both work."""
        return ctx.hyper["sigma"] ** 2 * ctx.diag([t**2 for t in ctx.theta])


def noisy_gd() -> Learner:
    """θ ← θ − η g + N(0, s²I): gradient descent with isotropic update noise of its own (s = ``sigma``)."""

    def init(params, hyper):
        return ()

    def mean_step(params, state, hyper, oracle):
        g = oracle.grad(jax.random.PRNGKey(0), params)
        return jax.tree_util.tree_map(lambda p, d: p - hyper["lr"] * d, params, g)

    def step(key, params, state, hyper, oracle):
        k_grad, k_noise = jax.random.split(key)
        g = oracle.grad(k_grad, params)
        xi = _normals_like(k_noise, params)
        return jax.tree_util.tree_map(lambda p, d, n: p - hyper["lr"] * d + hyper["sigma"] * n, params, g, xi), \
            state, {}

    def own_cov(params, hyper):
        d = ravel_pytree(params)[0].shape[0]
        return hyper["sigma"] ** 2 * jnp.eye(d)

    theory = LearnerTheory(covariance=lambda ctx: ctx.hyper["sigma"] ** 2 * ctx.eye)
    moments = StepMoments(gradient_gain=lambda h: h["lr"], own_cov=own_cov, mean_step=mean_step)
    return Learner("noisy-gd", init, step, {"lr": 0.05, "sigma": 0.005}, theory=theory, moments=moments)


def noisy_heavy_ball() -> Learner:
    """v ← βv − η g;  θ ← θ + v + N(0, σ²I).  Declares nothing: no prediction, raw drift only."""

    def init(params, hyper):
        return jax.tree_util.tree_map(jnp.zeros_like, params)

    def step(key, params, velocity, hyper, oracle):
        k_grad, k_noise = jax.random.split(key)
        grads = oracle.grad(k_grad, params)
        velocity = jax.tree_util.tree_map(lambda v, g: hyper["beta"] * v - hyper["lr"] * g, velocity, grads)
        xi = _normals_like(k_noise, params)
        params = jax.tree_util.tree_map(lambda p, v, n: p + v + hyper["sigma"] * n, params, velocity, xi)
        return params, velocity, {}

    return Learner("noisy-heavy-ball", init, step, {"lr": 0.05, "beta": 0.9, "sigma": 0.01})


def ring(point=(1.0, 0.0)) -> Loss:
    """L = ½ (x² + y² − 1)²: Γ is the unit circle."""
    return Loss(name="ring", residuals=lambda t: jnp.stack([t[0] ** 2 + t[1] ** 2 - 1]), kappa=0.5,
                variables=("x", "y"), residual_exprs=("x**2 + y**2 - 1",),
                expr="0.5*(x**2 + y**2 - 1)**2", point=tuple(point))


def tilted(point=(1.0, 1.5)) -> Loss:
    """L = ½ ((1 + x²/4)(y − x/2 − 1))²: Γ is the line y = x/2 + 1, its curvature λ growing with |x|."""
    return Loss(name="tilted", residuals=lambda t: jnp.stack([(1 + t[0] ** 2 / 4) * (t[1] - t[0] / 2 - 1)]),
                kappa=0.5, variables=("x", "y"), residual_exprs=("(1 + x**2/4)*(y - x/2 - 1)",),
                point=tuple(point))


def radius() -> Metric:
    """|θ|, the distance of the parameters from the origin."""
    return Metric("radius", lambda params, loss: jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(params))))


def multiplicative_tilted(ctx):
    """Multiplicative noise (σ = 0.01) with noisy-gd (η = 0.05, s = 0.005) on the tilted valley at x = 1.

    C(θ) = σ² diag(θ²) + s²I has a normal part that changes along Γ: the drift is the
    general rule's, with no closed form. Rao–Blackwellised step of the projected
    point, 8192 chains × 300 steps, against the prediction averaged along the same trajectories, within 2%.
    """
    lab = ctx.lab
    loss, noise = lab.component("losses", "tilted"), lab.component("noise", "multiplicative")
    learner = lab.component("learners", "noisy-gd")
    grid = {"learner": {"lr": 0.05, "sigma": 0.005}, "noise": {"sigma": 0.01}}
    m = lab.measure(loss, noise, learner, grid, (1.0, 1.5), chains=8192, steps=300, burn=100, chunk=100,
                    seed=ctx.seed * 1009 + 7, every=10)
    return [m.drift_row("multiplicative-tilted", 0, tol=0.02)]


@hookimpl
def flatland_learners(register):
    register("noisy-gd", noisy_gd, "gradient descent with its own update noise N(0, s²I) (example plugin)")
    register("noisy-heavy-ball", noisy_heavy_ball, "heavy-ball momentum with update noise (example plugin)")


@hookimpl
def flatland_losses(register):
    register("ring", ring, "ring valley ½(x²+y²−1)², Γ the unit circle (example plugin)")
    register("tilted", tilted, "tilted valley ½((1+x²/4)(y−x/2−1))², Γ a straight line (example plugin)")


@hookimpl
def flatland_noise_models(register):
    register("multiplicative", MultiplicativeNoise, "multiplicative update noise θ += σθ⊙ξ, C = σ²diag(θ²) (example plugin)")


@hookimpl
def flatland_metrics(register):
    register("radius", radius, "distance |θ| of the parameters from the origin (example plugin)")


@hookimpl
def flatland_checks(register):
    register("multiplicative-tilted",
             lambda: Check(name="multiplicative-tilted", run=multiplicative_tilted, suite="example"),
             "multiplicative noise on the tilted valley drifts as its declared covariance predicts (example plugin)")
