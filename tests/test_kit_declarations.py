"""The conformance kit catches false declarations: each test hands it one wrong on purpose."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest
from jax.flatten_util import ravel_pytree

import flatland
from flatland import Learner, LearnerTheory, NoiseModel, StepMoments
from flatland.testing import check_learner, check_noise


class Radial(NoiseModel):
    """θ += σ(ξ + ζθ): C = σ²(I + θθᵀ), correlated across coordinates."""

    name, hyper = "radial", {"sigma": 0.05}

    def perturb_params(self, key, p, h):
        flat, back = ravel_pytree(p)
        k1, k2 = jax.random.split(key)
        return back(flat + h["sigma"] * (jax.random.normal(k1, flat.shape) + jax.random.normal(k2) * flat))

    def param_cov(self, p, h):
        flat = ravel_pytree(p)[0]
        return h["sigma"] ** 2 * (jnp.eye(flat.shape[0]) + jnp.outer(flat, flat))

    def covariance(self, ctx):
        return ctx.hyper["sigma"] ** 2 * (ctx.eye + ctx.outer(ctx.theta))


def test_a_true_point_dependent_covariance_passes():
    check_noise(Radial())


def test_a_covariance_that_differs_between_backends_is_caught():
    class Trap(Radial):  # v @ v.T: θθᵀ for a SymPy column, |θ|² for a 1-D array
        def covariance(self, ctx):
            v = ctx.vector(list(ctx.theta))
            return ctx.hyper["sigma"] ** 2 * (ctx.eye + v @ v.T)

    with pytest.raises(AssertionError, match="differs between the numpy and"):
        check_noise(Trap())


def test_a_covariance_that_is_not_what_the_step_does_is_caught():
    class Half(Radial):
        def covariance(self, ctx):
            return ctx.hyper["sigma"] ** 2 * (ctx.eye + ctx.outer(ctx.theta)) / 2

    with pytest.raises(AssertionError, match="one step of size"):
        check_noise(Half())


def _noisy_gd(own_cov_factor=1.0, theory_factor=1.0):
    def step(key, p, s, h, o):
        k1, k2 = jax.random.split(key)
        flat, back = ravel_pytree(jax.tree_util.tree_map(lambda a, g: a - h["lr"] * g, p, o.grad(k1, p)))
        return back(flat + h["s"] * jax.random.normal(k2, flat.shape)), s, {}

    def mean_step(p, s, h, o):
        return jax.tree_util.tree_map(lambda a, g: a - h["lr"] * g, p, o.grad(jax.random.PRNGKey(0), p))

    def own_cov(p, h):
        return own_cov_factor * h["s"] ** 2 * jnp.eye(ravel_pytree(p)[0].shape[0])

    theory = LearnerTheory(covariance=lambda ctx: theory_factor * ctx.hyper["s"] ** 2 * ctx.eye)
    return Learner("noisy", lambda p, h: (), step, {"lr": 0.05, "s": 0.0}, theory=theory,
                   moments=StepMoments(gradient_gain=lambda h: h["lr"], own_cov=own_cov, mean_step=mean_step))


def test_own_noise_declarations_are_checked_even_when_the_default_is_zero():
    check_learner(_noisy_gd())
    with pytest.raises(AssertionError, match="own_cov"):
        check_learner(_noisy_gd(own_cov_factor=4.0))  # s = 0 by default would hide it
    with pytest.raises(AssertionError, match="LearnerTheory.covariance"):
        check_learner(_noisy_gd(theory_factor=2.0))


def _weight_decay_gd(potential):
    """GD with weight decay θ ← θ − lr(∇L + wd·θ): its step descends U = (wd/2)|θ|² besides L."""
    def step(key, p, s, h, o):
        return jax.tree_util.tree_map(lambda a, g: a - h["lr"] * (g + h["wd"] * a), p, o.grad(key, p)), s, {}

    return Learner("gd-wd", lambda p, h: (), step, {"lr": 0.05, "wd": 0.0},
                   theory=LearnerTheory(potential=potential), moments=StepMoments(gradient_gain=lambda h: h["lr"]))


def test_a_learner_must_declare_the_potential_its_step_descends():
    check_learner(_weight_decay_gd(lambda ctx: ctx.hyper["wd"] / 2 * sum(t ** 2 for t in ctx.theta)))
    with pytest.raises(AssertionError, match="declared potential"):   # wd = 0 by default would hide it
        check_learner(_weight_decay_gd(None))
    with pytest.raises(AssertionError, match="declared potential"):   # the wrong U (twice too steep)
        check_learner(_weight_decay_gd(lambda ctx: ctx.hyper["wd"] * sum(t ** 2 for t in ctx.theta)))


def _langevin_wd(potential):
    """Langevin GD with weight decay: θ ← θ − lr(∇L + wd·θ) + √(2·lr·T)ξ, own noise declared (own_cov)."""
    def mean_step(p, s, h, o):
        return jax.tree_util.tree_map(lambda a, g: a - h["lr"] * (g + h["wd"] * a), p, o.grad(jax.random.PRNGKey(0), p))

    def step(key, p, s, h, o):
        flat, back = ravel_pytree(mean_step(p, s, h, o))
        return back(flat + jnp.sqrt(2 * h["lr"] * h["T"]) * jax.random.normal(key, flat.shape)), s, {}

    def own_cov(p, h):
        return 2 * h["lr"] * h["T"] * jnp.eye(ravel_pytree(p)[0].shape[0])

    theory = LearnerTheory(covariance=lambda ctx: 2 * ctx.eta * ctx.hyper["T"] * ctx.eye, potential=potential)
    return Learner("langevin-wd", lambda p, h: (), step, {"lr": 0.05, "wd": 0.0, "T": 1e-5}, theory=theory,
                   moments=StepMoments(gradient_gain=lambda h: h["lr"], own_cov=own_cov, mean_step=mean_step))


def test_a_learner_with_its_own_noise_must_declare_its_potential_too():
    """A third-party Langevin learner with weight decay and no potential passed the kit (learners with
    own noise were skipped), and its drift was predicted 37% off. Its declared mean step is checked now."""
    check_learner(_langevin_wd(lambda ctx: ctx.hyper["wd"] / 2 * sum(t ** 2 for t in ctx.theta)))
    with pytest.raises(AssertionError, match="its mean step moved"):
        check_learner(_langevin_wd(None))


def test_a_covariance_that_grows_off_gamma_is_checked_against_the_step():
    """Minibatch noise is 0 on Γ and quadratic off it; its declared growth must be what the steps do there."""
    from named_laws import registry

    minibatch = registry().create("noise", "minibatch")
    check_noise(minibatch)

    class Doubled(type(minibatch)):
        def gradient_covariance(self, ctx, g):
            return 2 * super().gradient_covariance(ctx, g)

    with pytest.raises(AssertionError, match="gradient_covariance"):
        check_noise(Doubled())


def test_a_covariance_that_cannot_be_traced_is_caught():
    """float(np.sum(θ²)) works on the kit's concrete arrays but not inside `flatland check`'s compiled loop,
    where it ended in an internal error (exit 70) after the kit had passed it (third-party plugin audit)."""
    import numpy as np

    class Untraceable(Radial):
        def covariance(self, ctx):
            if ctx.backend == "sympy":
                return super().covariance(ctx)
            return ctx.hyper["sigma"] ** 2 * (ctx.eye + float(np.sum(np.asarray(ctx.theta))) * 0 + ctx.outer(ctx.theta))

    with pytest.raises(AssertionError, match="cannot be traced by JAX"):
        check_noise(Untraceable())


def test_a_wrong_upstream_gain_is_caught():
    """upstream_gain scales the covariance of noisy targets a minibatch draws from (label+minibatch was
    predicted 12.5% low before it existed); the kit checks it against gradients after noisy rows."""
    from named_laws import registry

    minibatch = registry().create("noise", "minibatch")
    check_noise(minibatch)

    class Summed(type(minibatch)):      # the old, additive composition: gain 1 instead of 1 + (N − 1)/B
        def upstream_gain(self, ctx):
            return 1.0

    with pytest.raises(AssertionError, match="upstream_gain"):
        check_noise(Summed())


def test_a_loss_whose_function_and_expression_differ_is_caught():
    """The theory reads residual_exprs, the simulator residuals(): a mutation audit changed the stretched
    valley's JAX residual (1 + x²)y to (1 + x²/2)y, kept its expression, and every test passed."""
    from flatland import Loss
    from flatland.testing import check_loss

    def valley(factor):
        return Loss("stretched-test", residuals=lambda p: jnp.atleast_1d((1 + factor * p[0] ** 2) * p[1]), kappa=0.5,
                    variables=("x", "y"), residual_exprs=("(1 + x**2)*y",), point=(0.7, 0.0))

    check_loss(valley(1.0))
    with pytest.raises(AssertionError, match="would study different losses"):
        check_loss(valley(0.5))


def _scaled_gd(gain):
    """GD with its step scaled by s: θ ← θ − lr·s·∇L, declaring ``gain(h)`` and LearnerTheory() (lr alone)."""
    def step(key, p, s, h, o):
        return jax.tree_util.tree_map(lambda a, g: a - h["lr"] * h["s"] * g, p, o.grad(key, p)), s, {}

    return Learner("scaled-gd", lambda p, h: (), step, {"lr": 0.05, "s": 2.0},
                   theory=LearnerTheory(), moments=StepMoments(gradient_gain=gain))


def test_a_learner_whose_gain_is_not_its_theorys_step_size_is_caught():
    """Gain lr·s with LearnerTheory's lr = lr passed; `check` then measured 4.23 x the label-noise prediction."""
    with pytest.raises(AssertionError, match="differs from LearnerTheory.lr"):
        check_learner(_scaled_gd(lambda h: h["lr"] * h["s"]))


def test_a_preconditioner_on_any_one_coordinate_is_caught():
    """θ ← θ − lr·D·∇L declaring the scalar gain lr: D = diag(1, 2, 1) passed, because the kit's one gradient
    shift, linspace(1, −1), is 0 on the middle coordinate of its 3-D problem (a README-only plugin author's
    audit, 2026-12-05). Every coordinate, and a rotation that fixes the old shift, are caught now."""
    from flatland.testing import smoke_loss

    d = int(ravel_pytree(smoke_loss().init(jax.random.PRNGKey(0)))[0].size)
    rot = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))[0]
    for P in [np.diag(np.where(np.arange(d) == k, 2.0, 1.0)) for k in range(d)] + [rot @ np.diag([1.0] + [3.0] * (d - 1)) @ rot.T]:
        def step(key, p, s, h, o, P=jnp.asarray(P)):
            flat, back = ravel_pytree(o.grad(key, p))
            return jax.tree_util.tree_map(lambda a, g: a - h["lr"] * g, p, back(P @ flat)), s, {}

        learner = Learner("precond", lambda p, h: (), step, {"lr": 0.05}, theory=LearnerTheory(),
                          moments=StepMoments(gradient_gain=lambda h: h["lr"]))
        with pytest.raises(AssertionError, match="declares gradient_gain"):
            check_learner(learner)


def test_a_per_coordinate_gain_is_refused_in_one_line():
    """A vector gain (a preconditioner) stopped the kit with 'TypeError: Only scalar arrays ...'."""
    with pytest.raises(AssertionError, match="must be one number"):
        check_learner(_scaled_gd(lambda h: h["lr"] * jnp.array([1.0, 2.0])))


def test_a_per_coordinate_step_size_in_the_theory_is_refused_in_one_line():
    """LearnerTheory.lr giving a vector stopped the kit with 'calling it raised TypeError: Only scalar arrays'."""
    learner = _scaled_gd(lambda h: h["lr"])
    vector = Learner(learner.name, learner.init, learner.step, learner.hyper,
                     theory=LearnerTheory(lr=lambda h: h["lr"] * jnp.array([1.0, 2.0])))
    with pytest.raises(AssertionError, match=r"LearnerTheory.lr gives \[0.05, 0.1\] \(shape \(2,\)\); it must be one"):
        check_learner(vector)
    text = Learner(learner.name, learner.init, learner.step, learner.hyper, theory=LearnerTheory(lr=lambda h: "lr"))
    with pytest.raises(AssertionError, match="LearnerTheory.lr gives 'lr'"):
        check_learner(text)


def test_a_learner_whose_step_raises_or_adds_undeclared_noise_gets_one_line():
    """A step returning two values stopped the kit with 'ValueError: not enough values to unpack'; one adding
    noise it does not declare was blamed on its 'declared potential'."""
    def two_values(key, p, s, h, o):
        return jax.tree_util.tree_map(lambda a, g: a - h["lr"] * g, p, o.grad(key, p)), s

    broken = Learner("two-values", lambda p, h: (), two_values, {"lr": 0.05},
                     theory=LearnerTheory(), moments=StepMoments(gradient_gain=lambda h: h["lr"]))
    with pytest.raises(AssertionError, match=r"^learner two-values: calling it raised ValueError") as exc:
        check_learner(broken)
    assert "\n" not in str(exc.value)

    def noisy(key, p, s, h, o):
        flat, back = ravel_pytree(jax.tree_util.tree_map(lambda a, g: a - h["lr"] * g, p, o.grad(key, p)))
        return back(flat + 0.01 * jax.random.normal(key, flat.shape)), s, {}

    hidden = Learner("hidden-noise", lambda p, h: (), noisy, {"lr": 0.05},
                     theory=LearnerTheory(), moments=StepMoments(gradient_gain=lambda h: h["lr"]))
    with pytest.raises(AssertionError, match="its step is random"):
        check_learner(hidden)


def test_a_metric_checked_on_a_loss_without_its_extras_says_which():
    """It ended in `KeyError: 'foo'`."""
    from flatland import Metric
    from flatland.testing import check_metric, smoke_loss

    with pytest.raises(AssertionError, match="lacks extras foo"):
        check_metric(Metric("needs-foo", lambda p, loss: loss.extras["foo"], requires=("foo",)), loss=smoke_loss())


def test_a_loss_whose_point_is_far_from_gamma_is_caught():
    """`point` is on or near Γ (check and the strategies start there): (3, 3, 3) on xyz = 1, residual 26, passed."""
    from flatland import Loss
    from flatland.testing import check_loss

    def product(point):
        return Loss("xyz-test", residuals=lambda p: jnp.atleast_1d(p[0] * p[1] * p[2] - 1), kappa=0.5,
                    variables=("x", "y", "z"), residual_exprs=("x*y*z - 1",), point=point)

    check_loss(product((2.0, 0.5, 1.0)))
    with pytest.raises(AssertionError, match=r"is .* from the nearest point of Γ found"):
        check_loss(product((3.0, 3.0, 3.0)))


def test_a_step_whose_info_is_not_scalars_is_caught():
    def step(key, p, s, h, o):
        return jax.tree_util.tree_map(lambda a, g: a - h["lr"] * g, p, o.grad(key, p)), s, {"g": o.grad(key, p)["w"]}

    with pytest.raises(AssertionError, match="info must be a dict of scalars, got g of shape"):
        check_learner(Learner("info-vector", lambda p, h: (), step, {"lr": 0.05}))


def test_scalar_residuals_without_a_row_axis_are_caught():
    """The docs ask for data examples along a leading axis (minibatch picks rows); a 0-d residual passed the kit."""
    from flatland import Loss
    from flatland.testing import check_loss

    with pytest.raises(AssertionError, match="residuals\\(params\\) is a scalar"):
        check_loss(Loss("scalar-r", residuals=lambda p: p[0] * p[1] - 1, kappa=0.5, variables=("x", "y"),
                        init=lambda key: jnp.array([2.0, 0.5])))


def _langevin(own_mean, moments=True):
    """GD plus its own noise σξ, declared through ``own`` moments with the given mean (or with no moments)."""
    def step(key, p, s, h, o):
        flat, back = ravel_pytree(jax.tree_util.tree_map(lambda a, g: a - h["lr"] * g, p, o.grad(key, p)))
        return back(flat + h["sigma"] * jax.random.normal(key, flat.shape)), s, {}

    def own(loss, p, s, h):
        flat = ravel_pytree(p)[0]
        return own_mean(flat, -h["lr"] * ravel_pytree(jax.grad(loss)(p))[0]), h["sigma"] ** 2 * jnp.eye(flat.shape[0])

    theory = LearnerTheory(covariance=lambda ctx: ctx.hyper["sigma"] ** 2 * ctx.eye) if moments else LearnerTheory()
    return Learner("own-langevin", lambda p, h: (), step, {"lr": 0.05, "sigma": 0.01}, theory=theory,
                   moments=StepMoments(own=own) if moments else None)


def test_own_moments_are_compared_with_sampled_steps():
    """``own`` returning the new params as its mean passed the kit, and `check` then measured a ratio of −39,657;
    a learner whose random step declares no noise at all (no moments) passed too and was predicted no drift."""
    check_learner(_langevin(lambda flat, move: move))   # the displacement: right
    with pytest.raises(AssertionError, match="returns the new params as its mean"):
        check_learner(_langevin(lambda flat, move: flat + move))
    with pytest.raises(AssertionError, match="vs StepMoments.own"):
        check_learner(_langevin(lambda flat, move: 2 * move))
    with pytest.raises(AssertionError, match="its step is random"):
        check_learner(_langevin(None, moments=False))
