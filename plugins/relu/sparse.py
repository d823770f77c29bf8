"""A step that skips what inactive ReLU units make exactly zero (same trajectory as the dense step).

What: ``make_sparse_step(loss, noise, learner)`` on a ReLU task, for any learner
(it is given an oracle whose gradient is the sparse one) and any noise model
that leaves the objective alone (gradient and update noise). Each step
tests the pre-activations of all units (that is how a unit that revives is
noticed) and keeps only whether each is positive for some input, gathers the active units into
a compact block of static capacity k, recomputes their pre-activations there,
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


#: inputs up to which the all-unit test is written as fused broadcast products (see make_sparse_grad); the
#: matrix product beyond (the unrolled form's program grows with the inputs; untimed there)
UNROLL_MAX_INPUTS = 32


def _compact_grad(params, active, X, Y, kappa, k):
    """Gradient of κ‖relu(XWᵀ + b) Vᵀ − Y‖² using only the (≤ k) units flagged ``active``.

    The flagged units are gathered (slots past the count get index n: their gathers fill zeros and
    their scatters are dropped), their pre-activations recomputed on the block, and the block's
    gradient scattered into zeros — the other units' gradient is exactly zero in the dense step too.
    """
    n = active.shape[0]
    idx = jnp.nonzero(active, size=k, fill_value=n)[0]
    Wa = params["W"].at[idx].get(mode="fill", fill_value=0)
    ba = params["b"].at[idx].get(mode="fill", fill_value=0)
    Va = params["V"].at[:, idx].get(mode="fill", fill_value=0)
    za = X @ Wa.T + ba
    ga = (za > 0).astype(za.dtype)
    ha = za * ga
    r2 = 2 * kappa * (ha @ Va.T - Y)
    delta = (r2 @ Va) * ga
    return {
        "V": jnp.zeros_like(params["V"]).at[:, idx].set(r2.T @ ha, mode="drop"),
        "W": jnp.zeros_like(params["W"]).at[idx].set(delta.T @ X, mode="drop"),
        "b": jnp.zeros_like(params["b"]).at[idx].set(jnp.sum(delta, axis=0), mode="drop"),
    }


def make_sparse_grad(ctx):
    """grad(params) with capacity buckets chosen per call by the active-unit count.

    Only the per-unit activity flags cross into the chosen branch (a 150×500 block passed to
    ``lax.switch`` is copied, which cost as much as the branch itself).
    """
    spec, X, Y, kappa = ctx["spec"], ctx["X"], ctx["Y"], ctx["kappa"]
    n = spec.n_hid
    caps = sorted({max(1, n // d) for d in (16, 8, 4, 2)} | {n})
    caps_arr = jnp.asarray(caps)
    fns = [lambda p, a, k=k: _compact_grad(p, a, X, Y, kappa, k) for k in caps]

    XT = X.T
    unrolled = XT.shape[0] <= UNROLL_MAX_INPUTS

    def grad(params):
        W, b = params["W"], params["b"]
        # is some input's pre-activation positive? (how a reviving unit is noticed). With few inputs, as a sum of
        # d_in broadcast products that XLA fuses with the test and the reduction, so the units × samples block is
        # never stored: 7,850–7,970 against 7,190–7,290 sparse steps/s at Fig 2's size (W·Xᵀ then a max, which
        # had been 34 against 40 µs for X·Wᵀ). The decision differs from the block's own only where a
        # pre-activation is within round-off of 0, where that unit's gradient is round-off either way.
        z = b[:, None] + (sum(W[:, j:j + 1] * XT[j:j + 1] for j in range(XT.shape[0])) if unrolled else W @ XT)
        active = jnp.any(z > 0, axis=1)
        branch = jnp.minimum(jnp.searchsorted(caps_arr, jnp.sum(active)), len(caps) - 1)
        return jax.lax.switch(branch, fns, params, active)

    return grad


def make_sparse_step(loss, noise, learner):
    """The sparse equivalent of ``flatland.make_step(loss, noise, learner)`` (see module doc)."""
    ctx = loss.extras.get("relu") if hasattr(loss, "extras") else None
    if ctx is None or ctx["spec"].activation != "relu":
        raise UserError("[relu] step = \"sparse\" needs a ReLU network task")
    if noise.overrides("objective") or noise.overrides("transform"):
        raise UserError(f"[relu] step = \"sparse\" computes the exact gradient of the task's loss; noise model "
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
