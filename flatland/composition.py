"""Several noise models in one run: ``compose_noise([a, b, ...])``.

A composed model applies its members in the listed order, each with its own
key: members that change the objective through ``transform`` (label noise,
minibatches) are chained — the next member sees the loss the previous one
made, so ``["label", "minibatch"]`` draws a minibatch of noisy targets — and
at most one member may change the objective without a ``transform``; gradient
perturbations are chained; update perturbations are drawn independently at
the same params and added, so their covariances add exactly.

Declarations: the covariance for the theory is the sum of the members',
exact where their noises are independent — update noise with label noise, or
label noise drawn on a minibatch's rows. Where a member changes the objective
and a later one reweights its rows (a minibatch of noisy targets), the earlier
member's covariance is multiplied by the later one's ``upstream_gain``; a
later objective-changing member that declares none leaves the composition
without a covariance (no prediction rather than a wrong one). A gradient
perturbation is taken to add its own noise (the built-in gradient noise
does); one that scaled the gradient would change an earlier member's
covariance too, which the sum does not account for. ``param_cov`` is the
sum; ``grad_cov`` is known where at most one member changes the gradient.
Hyperparameters are the members', named ``member.key`` (``label.sigma``).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .contracts import NoiseModel

_OBJECTIVE = ("objective", "transform")


class ComposedNoise(NoiseModel):
    """Members applied in order (see the module docstring)."""

    def __init__(self, members):
        members = list(members)
        if len(members) < 2:
            raise ValueError("compose_noise needs at least two noise models")
        names = [m.name for m in members]
        if len(set(names)) < len(names):
            raise ValueError(f"a noise model is listed twice in {names}")
        plain = [m.name for m in members if m.overrides("objective") and not m.overrides("transform")]
        changers = [m.name for m in members if any(m.overrides(x) for x in _OBJECTIVE)]
        if plain and len(changers) > 1:
            raise ValueError(f"cannot compose {', '.join(changers)}: {plain[0]} changes the objective without "
                             "declaring transform(loss, key, hyper), so another objective change cannot be chained")
        self.members = members
        self.name = "+".join(names)
        self.hyper = {f"{m.name}.{k}": v for m in members for k, v in m.hyper.items()}
        self.positive = tuple(f"{m.name}.{k}" for m in members for k in getattr(m, "positive", ()))
        self.requires = tuple(dict.fromkeys(k for m in members for k in m.requires))
        self.needs_residuals = any(getattr(m, "needs_residuals", False) for m in members)
        scaled = [f"{m.name}.{m.scale_key()}" for m in members if m.scale_key() is not None]
        self.scales = tuple(scaled)
        self.scale = scaled[0] if scaled else "sigma"

    def __repr__(self):
        return f"<noise {self.name}>"

    def overrides(self, method: str) -> bool:
        """A member's override counts; ``covariance`` only when every member declares one."""
        if method == "covariance":
            return all(m.overrides("covariance") for m in self.members)
        return any(m.overrides(method) for m in self.members)

    def part(self, member, hyper):
        """One member's hyperparameters out of the composed ``hyper``."""
        return {k: hyper[f"{member.name}.{k}"] for k in member.hyper}

    def _keys(self, key):
        return jax.random.split(key, len(self.members))

    def transform(self, loss, key, hyper):
        """The loss as the members' ``transform``s make it, chained in order (each with its own key).

        A member that changes the objective without a transform is applied by
        ``objective`` only; ``transform`` is what a caller needing the step's
        loss (e.g. a noisy forward pass in its extras) uses.
        """
        for m, k in zip(self.members, self._keys(key)):
            if m.overrides("transform"):
                loss = m.transform(loss, k, self.part(m, hyper))
        return loss

    def objective(self, loss, key, params, hyper):
        loss = self.transform(loss, key, hyper)
        for m, k in zip(self.members, self._keys(key)):
            if m.overrides("objective") and not m.overrides("transform"):
                return m.objective(loss, k, params, self.part(m, hyper))
        return loss(params)

    def perturb_grad(self, key, grad, hyper):
        for m, k in zip(self.members, self._keys(key)):
            grad = m.perturb_grad(k, grad, self.part(m, hyper))
        return grad

    def perturb_params(self, key, params, hyper):
        moved = params
        for m, k in zip(self.members, self._keys(key)):
            if m.overrides("perturb_params"):
                new = m.perturb_params(k, params, self.part(m, hyper))
                moved = jax.tree_util.tree_map(lambda acc, n, p: acc + (n - p), moved, new, params)
        return moved

    def covariance(self, ctx):
        total = None
        for i, m in enumerate(self.members):
            C = m.covariance(dataclasses.replace(ctx, hyper=self.part(m, ctx.hyper)))
            if C is None:
                return None
            if _changes_objective(m):   # rows that later members reweight (module doc)
                for later in self.members[i + 1:]:
                    if _changes_objective(later):
                        gain = later.upstream_gain(dataclasses.replace(ctx, hyper=self.part(later, ctx.hyper)))
                        if gain is None:
                            return None
                        C = gain * C
            total = C if total is None else total + C
        return total

    def gradient_covariance(self, ctx, g):
        """The members' off-Γ covariances added (None when no member declares one)."""
        parts = [m.gradient_covariance(dataclasses.replace(ctx, hyper=self.part(m, ctx.hyper)), g)
                 for m in self.members if m.overrides("gradient_covariance")]
        return sum(parts[1:], parts[0]) if parts else None

    def grad_cov(self, loss, params, hyper):
        changing = [m for m in self.members if m.overrides("perturb_grad") or any(m.overrides(x) for x in _OBJECTIVE)]
        if len(changing) > 1:
            return None  # their gradient noises interact (a minibatch of noisy targets): not stated
        if not changing:
            d = ravel_pytree(params)[0].shape[0]
            return jnp.zeros((d, d))
        return changing[0].grad_cov(loss, params, self.part(changing[0], hyper))

    def param_cov(self, params, hyper):
        total = None
        for m in self.members:
            C = m.param_cov(params, self.part(m, hyper))
            if C is None:
                return None
            total = C if total is None else total + C
        return total


def _changes_objective(member) -> bool:
    return any(member.overrides(x) for x in _OBJECTIVE)


def compose_noise(members) -> NoiseModel:
    """One noise model from several (a single model is returned as it is)."""
    members = list(members)
    return members[0] if len(members) == 1 else ComposedNoise(members)
