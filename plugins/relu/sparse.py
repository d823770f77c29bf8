"""A step that skips what inactive ReLU units make exactly zero (same trajectory as the dense step).

What: ``make_sparse_step(loss, noise, learner)`` on a ReLU task, for any learner
(it is given an oracle whose gradient is the sparse one) and any noise model
that leaves the objective alone (gradient and update noise). Each step
computes the pre-activations of all units (that is how a unit that revives is
noticed), gathers the active units into a compact block of static capacity k,
does the output, residual and backward products on that block only, and
scatters the gradient back — inactive units' gradient is exactly zero in the
dense step too. Capacities are buckets n/16, n/8, n/4, n/2, n chosen per step
with ``lax.switch`` (one compiled program, only the chosen branch runs).

The noise, the key splitting and the update are the dense step's own
(:func:`flatland.make_step` → learner → oracle → ``noise.perturb_grad`` /
``perturb_params``), so both steps draw identical random numbers. The gradient
of an active unit is the same sum with the zero terms left out; floating-point
summation order differs, so the two trajectories agree to round-off (≈1e-13
relative per step), not bit-for-bit — ``tests/test_relu_sparse.py`` checks the
agreement over a sparsified trajectory.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from flatland import Oracle, UserError


def _compact_grad(params, z, X, Y, kappa, k):
    """Gradient of κ‖relu(z) Vᵀ − Y‖² using only the (≤ k) units active on some input."""
    n = z.shape[1]
    active = jnp.any(z > 0, axis=0)
    count = jnp.sum(active)
    idx = jnp.nonzero(active, size=k, fill_value=0)[0]
    valid = (jnp.arange(k) < count).astype(z.dtype)
    za = z[:, idx]
    ga = (za > 0).astype(z.dtype) * valid
    ha = za * ga
    Va = params["V"][:, idx] * valid
    r2 = 2 * kappa * (ha @ Va.T - Y)
    gVa = r2.T @ ha
    delta = (r2 @ Va) * ga
    gWa = delta.T @ X
    gba = jnp.sum(delta, axis=0)
    return {
        "V": jnp.zeros_like(params["V"]).at[:, idx].add(gVa * valid),
        "W": jnp.zeros_like(params["W"]).at[idx].add(gWa * valid[:, None]),
        "b": jnp.zeros_like(params["b"]).at[idx].add(gba * valid),
    }


def make_sparse_grad(ctx):
    """grad(params) with capacity buckets chosen per call by the active-unit count."""
    spec, X, Y, kappa = ctx["spec"], ctx["X"], ctx["Y"], ctx["kappa"]
    n = spec.n_hid
    caps = sorted({max(1, n // d) for d in (16, 8, 4, 2)} | {n})
    caps_arr = jnp.asarray(caps)

    def grad(params):
        z = X @ params["W"].T + params["b"]
        count = jnp.sum(jnp.any(z > 0, axis=0))
        branch = jnp.minimum(jnp.searchsorted(caps_arr, count), len(caps) - 1)
        fns = [lambda p, z, k=k: _compact_grad(p, z, X, Y, kappa, k) for k in caps]
        return jax.lax.switch(branch, fns, params, z)

    return grad


def make_sparse_step(loss, noise, learner):
    """The sparse equivalent of ``flatland.make_step(loss, noise, learner)`` (see module doc)."""
    ctx = loss.extras.get("relu") if hasattr(loss, "extras") else None
    if ctx is None or ctx["spec"].activation != "relu":
        raise UserError("[run] step = \"sparse\" needs a ReLU network task")
    if noise.overrides("objective") or noise.overrides("transform"):
        raise UserError(f"[run] step = \"sparse\" computes the exact gradient of the task's loss; noise model "
                        f"{noise.name!r} changes the objective (use step = \"dense\")")
    grad = make_sparse_grad(ctx)

    def step(key, params, state, hyper):
        # the same keys as flatland.make_step: the oracle splits its key into (objective, gradient noise)
        k_learn, k_update = jax.random.split(key)

        def noisy_grad(k, p):
            return noise.perturb_grad(jax.random.split(k)[1], grad(p), hyper["noise"])

        oracle = Oracle(value=lambda k, p: loss(p), grad=noisy_grad)
        params, state, info = learner.step(k_learn, params, state, hyper["learner"], oracle)
        params = noise.perturb_params(k_update, params, hyper["noise"])
        return params, state, info

    return step
