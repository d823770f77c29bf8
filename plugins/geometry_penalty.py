"""Check ``geometry-dropout-penalty``: node dropout's explicit penalty predicts its drift.

Declared theory: for a one-hidden-layer network f(x) = Σ_j a_j h_j(x) with
loss L = mean_x ½(y − f(x))², node dropout with inverted scaling
(h_j → h_j m_j/(1−p), m_j ~ Bernoulli(1−p)) has, averaged over masks, the
objective L + R with R = p/(2(1−p)) · mean_x Σ_j a_j² h_j(x)²
(``flatland_plugins.geometry_noise.dropout_penalty``): E[(y − f̃)²] = (y − f)² + Var f̃.

Two statistics, on a small tanh network (2 inputs, 6 hidden units, 3
examples, float64) started on its zero-loss manifold:

1. one step: the mean dropout gradient over K = 4000 masks, projected on
   ∇R/‖∇R‖, against ‖∇R‖ (the loss gradient vanishes on the manifold);
2. drift along the manifold: T = 200 steps of full-batch GD (η = 0.01) with
   dropout, mean displacement over K = 512 seeds projected on the tangent
   direction u = P∇R/‖P∇R‖ (P: projector on the null space of the residual
   Jacobian), against the displacement of deterministic GD on L + R.

Estimator: sample mean over seeds; standard error: sample standard deviation
/ √K. Tolerance: |measured/predicted − 1| ≤ 0.05 and 3·se(ratio) ≤ 0.05
(flatland's one verdict rule) — 0.05 allows for the O(η) implicit-regularisation
drift of the mask noise itself, which the explicit penalty leaves out.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from flatland import Check, hookimpl, scalar

from .geometry_noise import dropout_penalty

P_DROP, ETA, STEPS = 0.3, 0.01, 200


def _problem(seed):
    rng = np.random.default_rng(seed)
    X = jnp.asarray(rng.normal(size=(3, 2)))
    W = jnp.asarray(rng.normal(size=(6, 2)) * 0.8)
    a = jnp.asarray(rng.normal(size=6) * 0.5)
    y = jnp.tanh(X @ W.T) @ a  # targets the start point fits exactly: θ0 is on the zero-loss manifold
    return X, y, jnp.concatenate([W.ravel(), a])


def _split(theta):
    return theta[:12].reshape(6, 2), theta[12:]


def _residuals(theta, X, y, mask=None):
    W, a = _split(theta)
    h = jnp.tanh(X @ W.T)
    if mask is not None:
        h = h * mask / (1 - P_DROP)
    return h @ a - y


def _loss(theta, X, y, mask=None):
    return 0.5 * jnp.mean(_residuals(theta, X, y, mask) ** 2)


def _penalty(theta, X):
    W, a = _split(theta)
    return dropout_penalty(P_DROP, a, jnp.tanh(X @ W.T))


def _masks(key, shape):
    return jax.random.bernoulli(key, 1 - P_DROP, shape).astype(jnp.float64)


def _ratio_result(name, statistic, predicted, samples, tol=0.05):
    """measured/predicted under flatland's one verdict rule: |ratio − 1| ≤ tol and 3 s.e. ≤ tol."""
    mean = float(np.mean(samples))
    se = float(np.std(samples, ddof=1) / np.sqrt(len(samples)))
    ratio, rse = mean / predicted, se / abs(predicted)
    return scalar(name, statistic, measured=mean, stderr=se, predicted=predicted, tol=tol, error=ratio - 1,
                  error_se=rse, ratio=ratio, ratio_stderr=rse,
                  tolerance=f"|ratio − 1| ≤ {tol:g} and 3·s.e.(ratio) ≤ {tol:g}")


def run(options):
    seed = int(options.seed)
    X, y, theta0 = _problem(seed)
    gR = jax.grad(_penalty)(theta0, X)
    u = gR / jnp.linalg.norm(gR)
    key = jax.random.PRNGKey(seed)
    k1, k2 = jax.random.split(key)
    # 1. one step: E_mask[∇ L_dropout] = ∇L + ∇R, and ∇L(θ0) = 0
    grads = jax.vmap(lambda m: jax.grad(_loss)(theta0, X, y, m))(_masks(k1, (4000, 3, 6)))
    one = _ratio_result("dropout-penalty/one-step-gradient",
                        "mean over 4000 masks of ∇(dropout loss)·∇R/‖∇R‖ at a zero-loss point",
                        float(jnp.linalg.norm(gR)), np.asarray(grads @ u))
    # 2. T steps: dropout GD vs deterministic GD on L + R, projected on the tangent direction of ∇R
    J = jax.jacfwd(_residuals)(theta0, X, y)
    _, s, vt = jnp.linalg.svd(J)
    null = vt[int(jnp.sum(s > 1e-10)):]
    tg = null.T @ (null @ gR)
    ut = tg / jnp.linalg.norm(tg)

    def noisy(k):
        def body(th, kk):
            return th - ETA * jax.grad(_loss)(th, X, y, _masks(kk, (3, 6))), None
        th, _ = jax.lax.scan(body, theta0, jax.random.split(k, STEPS))
        return (th - theta0) @ ut

    def det_body(th, _):
        return th - ETA * jax.grad(lambda t: _loss(t, X, y) + _penalty(t, X))(th), None

    th_det, _ = jax.lax.scan(det_body, theta0, None, length=STEPS)
    predicted = float((th_det - theta0) @ ut)
    samples = np.asarray(jax.jit(jax.vmap(noisy))(jax.random.split(k2, 512)))
    two = _ratio_result("dropout-penalty/drift-along-manifold",
                        f"mean over 512 seeds of the tangent displacement after {STEPS} dropout GD steps "
                        f"(η={ETA}, p={P_DROP}) vs GD on L + R", predicted, samples)
    two.details = {"tangent_dim": int(null.shape[0]), "first_order": float(-ETA * STEPS * (gR @ ut))}
    return [one, two]


@hookimpl
def flatland_checks(register):
    register("geometry-dropout-penalty", lambda: Check("geometry-dropout-penalty", run, suite="geometry"),
             "node dropout's explicit penalty p/(2(1−p))·mean Σ a_j²h_j² predicts its drift (one-hidden-layer MSE net)")
