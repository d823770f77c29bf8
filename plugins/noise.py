"""Built-in noise models for learning near a zero-loss manifold.

Each states how it perturbs a step (see ``flatland.NoiseModel``) and declares
what the engine and the theory ask of it: ``covariance(ctx)``, the per-step
parameter covariance C(θ) in a gradient step of size ``ctx.eta`` (Blanc et al.
2020; Damian et al. 2021: isotropic noise σ²I, label noise 2κη²σ²H), and the
exact conditional moments ``grad_cov``/``param_cov`` for the Rao–Blackwellised
estimators. All act on any params pytree and on residuals of any shape (rows =
data examples along the leading axis), so the ReLU network uses them unchanged.
"""
import dataclasses
import math

import numpy as np

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from flatland import NoiseModel, hookimpl, normal_from_words, philox_words


def _normal_like(key, tree, draw_dtype=None):
    """Standard normals shaped like ``tree``; drawn in ``draw_dtype`` (if given) and cast to each leaf's dtype.

    ``draw_dtype = "fast"``: :mod:`flatland.normal_draws` — one Philox stream under ``key``, the leaves
    taking consecutive words, one word per normal.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    if isinstance(draw_dtype, str):      # one Philox stream: each leaf takes the next words (no key split)
        sizes = [math.prod(jnp.shape(x)) for x in leaves]
        words = philox_words(key, sum(sizes))
        ends = np.cumsum(sizes)
        noise = [normal_from_words(words[e - n:e], jnp.result_type(x)).reshape(jnp.shape(x))
                 for n, e, x in zip(sizes, ends, leaves)]
        return jax.tree_util.tree_unflatten(treedef, noise)
    keys = jax.random.split(key, len(leaves))
    noise = [jax.random.normal(k, jnp.shape(x), draw_dtype or jnp.result_type(x)).astype(jnp.result_type(x))
             for k, x in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, noise)


class _IsotropicDraws:
    """Factory option ``draws``: "exact" (default) draws ``jax.random.normal`` in the params' dtype;
    "fast" draws :func:`flatland.normal_draws.standard_normal` — Philox words and a float32-accurate
    quantile, the normal law to 2⁻³² in probability with tails to 6.3σ, ~3× cheaper than float64
    threefry normals here; "float32" draws float32 threefry normals and casts them (tails cut near
    5.3σ, 24-bit resolution). The three give different random numbers for the same seed."""

    draw_dtype = None

    def __init__(self, draws: str = "exact"):
        if draws not in ("exact", "fast", "float32"):
            raise ValueError(f"{self.name}: draws must be 'exact', 'fast' or 'float32', got {draws!r}")
        self.draw_dtype = {"exact": None, "fast": "fast", "float32": jnp.float32}[draws]


def _dim(params):
    return ravel_pytree(params)[0].shape[0]


def _flat_jacobian(loss, params):
    """J = ∂r/∂θ with residuals flattened to rows and params flattened: (n_res, d)."""
    flat, unravel = ravel_pytree(params)
    return jax.jacfwd(lambda f: jnp.ravel(loss.residuals(unravel(f))))(flat)


class NoNoise(NoiseModel):
    """Exact gradients: plain GD drifts nowhere once on Γ."""

    name = "none"
    hyper = {}

    def covariance(self, ctx):
        return 0 * ctx.eye


class UpdateNoise(_IsotropicDraws, NoiseModel):
    """θ ← θ + N(0, σ²I) after each learner step."""

    name = "update"
    hyper = {"sigma": 0.01}

    def perturb_params(self, key, params, hyper):
        draws = _normal_like(key, params, self.draw_dtype)
        return jax.tree_util.tree_map(lambda p, n: p + hyper["sigma"] * n, params, draws)

    def param_cov(self, params, hyper):
        return hyper["sigma"] ** 2 * jnp.eye(_dim(params))

    def covariance(self, ctx):
        return ctx.hyper["sigma"] ** 2 * ctx.eye


class GradientNoise(_IsotropicDraws, NoiseModel):
    """The paper's convention: g ← ∇L + N(0, σ_g²I), so GD's parameter noise is ησ_g."""

    name = "gradient"
    hyper = {"sigma": 0.01}

    def perturb_grad(self, key, grad, hyper):
        draws = _normal_like(key, grad, self.draw_dtype)
        return jax.tree_util.tree_map(lambda g, n: g + hyper["sigma"] * n, grad, draws)

    def grad_cov(self, loss, params, hyper):
        return hyper["sigma"] ** 2 * jnp.eye(_dim(params))

    def covariance(self, ctx):
        """C = η²σ_g²I: the gradient's noise, moved by the step size."""
        return ctx.eta**2 * ctx.hyper["sigma"] ** 2 * ctx.eye


class LabelNoise(NoiseModel):
    """Gaussian label noise: every step sees residuals r − ε, ε ~ N(0, σ²) per residual.

    This is exactly what fresh noisy targets do (r = f − y, y → y + ε), applied
    in the objective at every step — not through its leading-order covariance.
    """

    name = "label"
    hyper = {"sigma": 0.1}
    needs_residuals = True

    def _eps(self, key, r, hyper):
        return hyper["sigma"] * jax.random.normal(key, jnp.shape(r), jnp.result_type(r))

    def transform(self, loss, key, hyper):
        """The loss with noisy targets: residuals r − ε, ε drawn afresh for this step."""
        if loss.residuals is None:
            raise ValueError(f"label noise needs a loss with residuals; {loss.name!r} has only a value")

        def residuals(params):
            r = loss.residuals(params)
            return r - self._eps(key, r, hyper)

        return dataclasses.replace(loss, residuals=residuals, value=None)

    def _var(self, hyper):
        return hyper["sigma"] ** 2

    def grad_cov(self, loss, params, hyper):
        # g = 2κ Jᵀ(r − ε): Cov g = 4κ² Var(ε) JᵀJ exactly, on or off Γ.
        J = _flat_jacobian(loss, params)
        return 4 * loss.kappa ** 2 * self._var(hyper) * J.T @ J

    def covariance(self, ctx):
        """C = η² Cov(g) = 2κη²Var(ε)·H on Γ (g = 2κJᵀ(r − ε), H = 2κJᵀJ)."""
        return 2 * ctx.kappa * ctx.eta**2 * self._var(ctx.hyper) * ctx.H

    def upstream_gain(self, ctx):
        """1: ε is added to the rows, independently of what earlier members did to them (a minibatch's
        reweighting keeps its own covariance, and ε's reaches the gradient with E[s_i²] = 1)."""
        return 1


class UniformLabelNoise(LabelNoise):
    """The paper's label noise: ε uniform on [−w/2, w/2] (variance w²/12) per residual, every step."""

    name = "uniform-label"
    hyper = {"width": 0.3}
    scale = "width"

    def _eps(self, key, r, hyper):
        u = jax.random.uniform(key, jnp.shape(r), jnp.result_type(r), -0.5, 0.5)
        return hyper["width"] * u

    def _var(self, hyper):
        return hyper["width"] ** 2 / 12


class MinibatchNoise(NoiseModel):
    """Minibatch SGD: each step fits B rows of the residuals drawn from the N rows.

    The objective is κ (N/B) Σ_{i∈batch} r_i², an unbiased estimate of L. Rows
    are drawn with replacement (i.i.d., the case the theory states: with noisy
    targets of variance s² it is label noise with σ² = s²/B) or, with
    ``replace=False``, without (covariance × (N − B)/(N − 1)). ``batch`` is a
    factory option because it sets array shapes. On a loss whose rows are all
    fitted exactly the noise vanishes on Γ.
    """

    name = "minibatch"
    hyper = {}
    needs_residuals = True

    def __init__(self, batch: int = 8, replace: bool = True):
        if int(batch) < 1:
            raise ValueError(f"minibatch: batch must be ≥ 1, got {batch}")
        self.batch, self.replace = int(batch), bool(replace)

    def __repr__(self):
        return f"<noise minibatch batch={self.batch} replace={self.replace}>"

    def counts(self, key, n):
        """How often each of the n rows is in this step's batch (sums to B)."""
        if self.replace:
            rows = jax.random.randint(key, (self.batch,), 0, n)
        else:
            if self.batch > n:
                raise ValueError(f"minibatch: batch {self.batch} > {n} rows without replacement")
            rows = jax.random.permutation(key, n)[: self.batch]
        # one-hot counts rather than a gather: its gradient is dense, not a scatter (much faster under vmap)
        return jax.nn.one_hot(rows, n, dtype=float).sum(0)

    def transform(self, loss, key, hyper):
        """The minibatch loss κ (N/B) Σ_rows w_i r_i², as residuals √(N w_i / B)·r_i (w: row counts)."""
        if loss.residuals is None:
            raise ValueError(f"minibatch noise needs a loss with residual rows; {loss.name!r} has only a value")

        def residuals(params):
            r = loss.residuals(params)
            n = jnp.shape(r)[0]
            w = self.counts(key, n).astype(jnp.result_type(r)).reshape((n,) + (1,) * (jnp.ndim(r) - 1))
            return jnp.sqrt(w * (n / self.batch)) * r

        return dataclasses.replace(loss, residuals=residuals, value=None)

    def covariance(self, ctx):
        """C = 0 on Γ: where every residual row is zero, so is every row's gradient.

        (With noisy targets the rows are not fitted exactly; that case is label
        noise with σ² = s²/B, which the theory states as such.)"""
        return 0 * ctx.eye

    def gradient_covariance(self, ctx, g):
        """Off Γ the rows are no longer all fitted. At a normal displacement δ = H⁺g, row i's residual
        is r_i ≈ J_i·δ and its gradient u_i = 2κN r_i J_i; one step's parameter covariance is
        η²/B · [mean_i u_i u_iᵀ − ḡḡᵀ] (× (N − B)/(N − 1) without replacement): ``grad_cov`` to second
        order in δ. Each residual counts as a row (the valleys' convention)."""
        J = ctx.J
        n = J.shape[0]
        r = J @ ctx.normal_displacement(g)
        u = 2 * ctx.kappa * n * r[:, None] * J
        du = u - u.mean(0)
        cov = du.T @ du / (n * self.batch)
        if not self.replace:
            cov = cov * (n - self.batch) / max(n - 1, 1)
        return ctx.eta ** 2 * cov

    def upstream_gain(self, ctx):
        """Noise put into the rows before the batch is drawn (noisy targets, ε_i i.i.d. per row) reaches the
        gradient as 2κ Σ_i s_i² J_i ε_i with s_i² = w_i N/B: its covariance × E[s_i⁴] = (N/B)² E[w_i²], which is
        1 + (N − 1)/B with replacement (multinomial counts) and N/B without."""
        n = ctx.J.shape[0]
        return 1 + (n - 1) / self.batch if self.replace else n / self.batch

    def grad_cov(self, loss, params, hyper):
        flat, unravel = ravel_pytree(params)
        r = loss.residuals(params)
        n = r.shape[0]
        rows = lambda f: jnp.reshape(loss.residuals(unravel(f)), (n, -1))
        J = jax.jacfwd(rows)(flat)  # (n, k, d)
        u = 2 * loss.kappa * n * jnp.einsum("nk,nkd->nd", jnp.reshape(r, (n, -1)), J)  # per-row gradients
        du = u - u.mean(0)
        cov = du.T @ du / n / self.batch
        if not self.replace:
            cov = cov * (n - self.batch) / max(n - 1, 1)
        return cov


@hookimpl
def flatland_noise_models(register):
    register("none", NoNoise, "no noise: exact gradients (plain GD has zero drift on Γ)")
    register("update", UpdateNoise, "isotropic update noise θ += N(0, σ²I); regularizer log pdet H")
    register("gradient", GradientNoise, "gradient noise g += N(0, σ²I) (paper's convention: parameter noise ησ)")
    register("label", LabelNoise, "Gaussian label noise r → r − N(0, σ²) every step; regularizer tr H")
    register("uniform-label", UniformLabelNoise, "uniform label noise of width w (variance w²/12), every step; tr H")
    register("minibatch", MinibatchNoise, "minibatch SGD over residual rows (option batch=B); noisy targets ≈ label σ²=s²/B")
