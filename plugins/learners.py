"""Built-in learners as init/step pairs: GD, heavy-ball momentum, SED and optax's Adam/RMSprop.

Every learner's hyperparameters are array leaves with the step size under
``lr``. Minibatch SGD is GD under the ``minibatch`` noise model (its batch size
is that model's factory option): the oracle a learner sees is already the
minibatch loss. Each learner declares what it can: ``gd`` its theory (plain
gradient descent) and its exact moments (affine in the gradient, gain lr);
``momentum`` its moments only; ``sed`` its theory (effective step μs², its
probe noise's covariance, the potential (s²/2) tr H) and its moments by
Gauss–Hermite quadrature. Adam and RMSprop declare nothing: no prediction, and
their drift is measured by raw displacement.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from flatland import Learner, LearnerTheory, StepMoments, UserError, hookimpl, optax_learner

GD_THEORY = LearnerTheory()
GAIN_LR = StepMoments(gradient_gain=lambda hyper: hyper["lr"])


def gradient_descent() -> Learner:
    """θ ← θ − η g, with g from the (noisy) oracle."""

    def init(params, hyper):
        return ()

    def step(key, params, state, hyper, oracle):
        g = oracle.grad(key, params)
        return jax.tree_util.tree_map(lambda p, d: p - hyper["lr"] * d, params, g), state, {}

    return Learner("gd", init, step, {"lr": 0.05}, theory=GD_THEORY, moments=GAIN_LR)


def momentum() -> Learner:
    """Heavy-ball momentum: v ← βv − η g, θ ← θ + v (state v starts at 0)."""

    def init(params, hyper):
        return jax.tree_util.tree_map(jnp.zeros_like, params)

    def step(key, params, state, hyper, oracle):
        g = oracle.grad(key, params)
        v = jax.tree_util.tree_map(lambda v, d: hyper["beta"] * v - hyper["lr"] * d, state, g)
        return jax.tree_util.tree_map(jnp.add, params, v), v, {}

    # moments only: near Γ heavy-ball is not gradient descent with one effective step at finite η
    return Learner("momentum", init, step, {"lr": 0.05, "beta": 0.9}, moments=GAIN_LR)


def sed_scales(params, per_matrix: bool):
    """Per-leaf factor on N(0, s²) perturbations: 1, or 1/√rows for matrices (the paper's code)."""

    def scale(x):
        if per_matrix and jnp.ndim(x) >= 2:
            return 1.0 / jnp.sqrt(jnp.shape(x)[0])
        return 1.0

    return jax.tree_util.tree_map(scale, params)


def stochastic_error_descent(per_matrix: bool = False) -> Learner:
    """SED: θ ← θ − μ π [L(θ+π) − L(θ)], π ~ N(0, s²I) per leaf (``lr`` = μ, ``sigma`` = s).

    No gradient is used: the loss is evaluated twice with the same objective
    noise (so label noise, if any, is the same sample at θ and θ+π). With
    ``per_matrix=True`` each weight matrix is perturbed by N(0, s²)/√rows, the
    paper's convention. Its mean step is −μ s² ∇(L ∗ N(0, s²)) (Stein's lemma):
    gradient descent on the Gaussian-smoothed loss, whose extra term (s²/2) tr H
    is the implicit regularizer.
    """

    def init(params, hyper):
        return ()

    def step(key, params, state, hyper, oracle):
        k_pi, k_obj = jax.random.split(key)
        leaves, treedef = jax.tree_util.tree_flatten(params)
        keys = jax.random.split(k_pi, len(leaves))
        scales = jax.tree_util.tree_leaves(sed_scales(params, per_matrix))
        pi = [hyper["sigma"] * s * jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
              for k, s, x in zip(keys, scales, leaves)]
        pi = jax.tree_util.tree_unflatten(treedef, pi)
        moved = jax.tree_util.tree_map(jnp.add, params, pi)
        delta = oracle.value(k_obj, moved) - oracle.value(k_obj, params)
        new = jax.tree_util.tree_map(lambda p, q: p - hyper["lr"] * q * delta, params, pi)
        return new, state, {"delta_loss": delta}

    if per_matrix:  # per-leaf probe scales: neither the theory nor the quadrature below describes them
        return Learner("sed", init, step, {"lr": 1.0, "sigma": 0.1})
    return Learner("sed", init, step, {"lr": 1.0, "sigma": 0.1}, theory=SED_THEORY,
                   moments=StepMoments(own=sed_moments))


def sed_covariance(ctx):
    """Covariance of SED's step on Γ: −μ π (½ πᵀHπ) to leading order, π ~ N(0, s²I).

    By Isserlis' theorem: μ² s⁶/4 [((tr H)² + 2 tr H²) I + 4 tr H · H + 8 H²]
    (μ = ``lr``, s = ``sigma`` of the learner's hyperparameters).
    """
    mu, s = ctx.hyper["lr"], ctx.hyper["sigma"]
    H = ctx.H
    trH, H2 = ctx.trace(H), H @ H
    return mu**2 * s**6 / 4 * ((trH**2 + 2 * ctx.trace(H2)) * ctx.eye + 4 * trH * H + 8 * H2)


def sed_gradient_covariance(ctx, g):
    """Covariance of SED's step that grows with the gradient g off Γ: η²(ggᵀ + |g|²I), η = μs².

    The probe's linear part −μπ(π·g) has mean −ηg and, by Isserlis' theorem,
    covariance μ²(E[ππᵀggᵀππᵀ] − s⁴ggᵀ) = η²(ggᵀ + |g|²I). Near Γ (g ≈ Hδ) it
    adds 2η²λ²S to a normal direction's second-moment recursion, so SED's normal
    fluctuations solve η(2λ − 3ηλ²)S = C instead of η(2λ − ηλ²)S = C.
    """
    G = ctx.outer(g)
    return ctx.eta**2 * (G + ctx.trace(G) * ctx.eye)


SED_PROBE_WARN = 0.01  # s²/λ above which SED's finite-probe terms (left out) pass ~1% of the drift
SED_MU_CHECKED = 0.1   # μs²λ_max up to which the finite-μ prediction is checked to 2% (the sed-trace rows)
#: μs²λ from which the normal fluctuations' moment of order 2k is infinite (k = 4, 3, 2): along the normal of a
#: codimension-1 Γ SED multiplies δ by 1 − μs²λz, z ~ χ²₁, and that moment diverges once E(1 − μs²λz)^2k ≥ 1
SED_TAIL_ONSETS = ((8, 0.207), (6, 0.269), (4, 0.383))


def sed_regime(ctx):
    """Warnings where SED's prediction is known to lose accuracy: a probe not small against the curvature (the
    prediction is leading order in s²/λ), a large μs²λ (heavy-tailed normal fluctuations), a strong smoothing."""
    lam = np.linalg.eigvalsh(np.asarray(ctx.H, float))
    lam = lam[lam > 1e-9 * max(lam.max(), 1e-300)]
    if lam.size == 0:
        return []
    s2 = float(ctx.hyper["sigma"]) ** 2
    ratio = s2 / float(lam.min())
    out = []
    a = float(ctx.hyper["lr"]) * s2 * float(lam.max())
    if a > SED_MU_CHECKED * (1 + 1e-9):
        onsets = ", ".join(f"the {k}th from {v:g}" for k, v in SED_TAIL_ONSETS)
        out.append(f"SED at μs²λ_max = {a:.3g} > {SED_MU_CHECKED:g}: its finite-μ prediction keeps the normal "
                   f"fluctuations' second moments, but SED's multiplicative probe noise gives them power-law tails "
                   f"whose left-out higher moments grow with μs²λ (infinite moments: {onsets}); on xy = 1 an "
                   "observable's prediction was 1% off at 0.1, 2.3% at 0.2 and 7.5% at 0.27")
    if ratio > SED_PROBE_WARN:
        out.append(f"SED probe size s² = {ratio:.3g}·λ_min: the prediction is leading order in s²/λ (exact in "
                   f"μs²λ), expect a relative error of order {ratio:.2g}; use s² ≤ {SED_PROBE_WARN:g}·λ_min for ~1%")
    if ctx.derivative is not None:   # the smoothing's next term (s⁴/8)Δ²L against the kept (s²/2)ΔL = (s²/2) tr H,
        # by what moves the chains: their gradients along Γ (a constant Δ²L, as for quadratic residuals, moves nothing)
        H = np.asarray(ctx.H, float)
        w, V = np.linalg.eigh(H)
        normal = V[:, w > 1e-9 * max(w.max(), 1e-300)]
        P_T = np.eye(H.shape[0]) - normal @ normal.T
        kept = np.linalg.norm(P_T @ np.einsum("kii->k", np.asarray(ctx.dH, float)))
        nxt = np.linalg.norm(P_T @ np.einsum("kiijj->k", np.asarray(ctx.derivative(5), float)))
        next_term = s2 / 4 * nxt / kept if kept > 0 else 0.0
        if next_term > SED_PROBE_WARN:
            out.append(f"SED's smoothing: its next term (s⁴/8)Δ²L pulls along Γ {next_term:.2g} as hard as the "
                       "potential kept, (s²/2) tr H, here (a loss that is not a sum of squares, or strongly curved "
                       "residuals): expect a relative error of that order; a smaller s lowers it as s²")
    return out


#: SED's mean step is exactly −μs² ∇(L ∗ N(0, s²)) = −μs² ∇(L + (s²/2) tr H) + O(s⁶) (Stein's lemma),
#: so its effective step is μs² and its potential (s²/2) tr H at every μ; its probes add
#: ``sed_covariance`` on Γ and ``sed_gradient_covariance`` off it, which the finite-η rule solves
#: exactly. Left out, relative O(s²/λ): the O(s⁴) smoothing terms, the probe covariance beyond
#: ½πᵀHπ, and the potential's own curvature in the normal contraction.
SED_THEORY = LearnerTheory(lr=lambda h: h["lr"] * h["sigma"] ** 2, covariance=sed_covariance,
                           potential=lambda ctx: ctx.hyper["sigma"] ** 2 / 2 * ctx.trace(ctx.H),
                           uses_gradient=False, gradient_covariance=sed_gradient_covariance, regime=sed_regime)

GH_MAX_DIM = 4
GH_NODES = 6


def gauss_hermite(dim: int, n: int):
    """Tensor-product nodes z (n^dim, dim) and weights w (sum 1) for E f(z), z ~ N(0, I)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    z = np.array(list(itertools.product(x, repeat=dim)))
    weights = np.prod(np.array(list(itertools.product(w, repeat=dim))), axis=1)
    return z, weights


def sed_moments(loss, params, state, hyper):
    """Exact mean and covariance of one SED step at θ, by Gauss–Hermite quadrature over π.

    With n nodes per coordinate the mean is exact for a polynomial loss of
    degree ≤ 2n − 2 and the covariance for degree ≤ n − 2 (n = 6: quartic
    valleys exactly). Tensor quadrature: small problems only (≤ 4 parameters).
    """
    flat, unravel = ravel_pytree(params)
    d = flat.shape[0]
    if d > GH_MAX_DIM:
        raise ValueError(f"SED conditional moments by quadrature need ≤ {GH_MAX_DIM} parameters, got {d}")
    z, w = gauss_hermite(d, GH_NODES)
    s, mu = hyper["sigma"], hyper["lr"]
    pi = s * jnp.asarray(z)
    dl = jax.vmap(lambda q: loss(unravel(flat + q)))(pi) - loss(unravel(flat))
    step = -mu * pi * dl[:, None]
    w = jnp.asarray(w)
    mean = w @ step
    second = jnp.einsum("n,ni,nj->ij", w, step, step)
    return mean, second - jnp.outer(mean, mean)


def _adam(lr, b1, b2, eps):
    return optax.adam(learning_rate=lr, b1=b1, b2=b2, eps=eps)


def _rmsprop(eps_in_sqrt, bias_correction):
    def make(lr, decay, eps):
        return optax.rmsprop(learning_rate=lr, decay=decay, eps=eps, eps_in_sqrt=eps_in_sqrt,
                             bias_correction=bias_correction)
    return make


def adam() -> Learner:
    """Adam through optax, with optax's defaults and ``lr`` as the step-size key."""
    return optax_learner("adam", _adam, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8)


def rmsprop(eps_in_sqrt: bool = True, bias_correction: bool = False) -> Learner:
    """RMSprop through optax, with optax's defaults and ``lr`` as the step-size key.

    ``eps_in_sqrt`` (option, optax's): the step is g/√(ν + ε) (True, optax's default) or g/(√ν + ε) (False,
    PyTorch's ``torch.optim.RMSprop``). Near a minimum, where |g| ≪ √ε = 1e-4, the first damps the steps and
    the second keeps them at ~lr per coordinate: different dynamics on a loss plateau. PyTorch's defaults are
    ``eps_in_sqrt = false``, ``decay = 0.99``, ``lr = 0.01``.

    ``bias_correction`` (option, optax's; PyTorch has none): divide ν by 1 − decayᵗ. The zero-initialised ν
    otherwise makes the first steps ~1/√(1 − decay) times larger (10× at decay 0.99), a kick at start-up."""
    for name, value in (("eps_in_sqrt", eps_in_sqrt), ("bias_correction", bias_correction)):
        if not isinstance(value, bool):
            raise UserError(f"rmsprop option {name} must be true or false, got {value!r}")
    return optax_learner("rmsprop", _rmsprop(eps_in_sqrt, bias_correction), lr=1e-3, decay=0.9, eps=1e-8)


@hookimpl
def flatland_learners(register):
    register("gd", gradient_descent, "full-batch gradient descent θ ← θ − η∇L (minibatch SGD: with noise 'minibatch')")
    register("momentum", momentum, "heavy-ball momentum v ← βv − η g, θ ← θ + v")
    register("sed", stochastic_error_descent, "stochastic error descent θ −= μ π ΔL, π ~ N(0, s²I) (option per_matrix)")
    register("adam", adam, "Adam (optax.adam)")
    register("rmsprop", rmsprop, "RMSprop (optax.rmsprop); options eps_in_sqrt (false: PyTorch's), bias_correction")
