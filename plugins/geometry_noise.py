"""Noise models for drift geometry: noise inside a network's forward pass, and gradient noise.

The generic NoiseModel hooks (objective / perturb_grad / perturb_params) see
only params, so forward-pass noise goes through the task: a loss whose
``extras`` carry ``apply(params, x, perturb)``, ``x_train``, ``y_train`` and
``loss_fn`` (see ``geometry_task``). Each ``objective(loss, key, params,
hyper)`` draws a minibatch of ``batch`` training examples (with replacement)
and runs the noisy forward pass on it. Noise acts on one hidden layer
(``layer``, default the 84-unit feature layer):

* ``node-dropout`` p: h ← h·m/(1−p), m ~ Bernoulli(1−p) per unit and example;
* ``weight-dropout`` p: each weight into the layer dropped with probability p,
  a fresh mask **per example** (measured by the issue author: one mask per
  pass shared by the batch does not work), rescaled by 1/(1−p);
* ``node-additive`` σ: h ← h + N(0, σ²);
* ``node-multiplicative`` σ: h ← h·N(1, σ²);
* ``grad-additive`` σ: clean forward, g ← g + N(0, σ²) on every parameter — not a model of
  its own: the composition of ``sgd-minibatch`` with the generic ``gradient`` noise
  (``flatland.compose_noise``), its σ named ``gradient.sigma``;
* ``sgd-minibatch``: clean forward, minibatch noise only (plain SGD).

Masks are redrawn on every forward pass (``period=1``). With ``period=k`` the
training loop (``flatland.geometry.experiment``) holds one mask, shared by
all examples, for k steps: it calls ``held(mask_key)``, which returns a model
whose perturbation uses ``mask_key`` and no batch axis.

Theory (declared, checked by ``geometry-dropout-penalty``): node dropout on a
one-hidden-layer network with MSE loss ½(y − Σ_j a_j h_j)² adds, in
expectation over masks, the explicit penalty p/(2(1−p)) · mean_x Σ_j a_j² h_j(x)²
(:func:`dropout_penalty`).
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from flatland import NoiseModel, compose_noise, hookimpl

from .geometry_task import FEATURE_LAYER, Perturb
from .noise import GradientNoise


def _require_network(loss, name):
    missing = [k for k in ("apply", "x_train", "y_train", "loss_fn") if k not in loss.extras]
    if missing:
        raise ValueError(f"noise model {name!r} acts inside a network's forward pass; loss {loss.name!r} "
                         f"lacks extras {', '.join(missing)} (use a task such as digits-mlp)")


class _LayerPerturb(Perturb):
    """Applies ``node_fn`` / ``dense_fn`` at ``layer`` only."""

    def __init__(self, layer, key, hyper, node_fn=None, dense_fn=None, shared=False):
        self.layer, self.key, self.hyper = layer, key, hyper
        self.node_fn, self.dense_fn, self.shared = node_fn, dense_fn, shared

    def dense(self, layer, x, W, b):
        if self.dense_fn is None or layer != self.layer:
            return x @ W + b
        return self.dense_fn(jax.random.fold_in(self.key, 1), x, W, b, self.hyper, self.shared)

    def nodes(self, layer, h):
        if self.node_fn is None or layer != self.layer:
            return h
        shape = h.shape[-1:] if self.shared else h.shape
        return self.node_fn(jax.random.fold_in(self.key, 2), h, shape, self.hyper)


def _node_dropout(key, h, shape, hyper):
    keep = 1.0 - hyper["p"]
    return h * jax.random.bernoulli(key, keep, shape).astype(h.dtype) / keep


def _node_additive(key, h, shape, hyper):
    return h + hyper["sigma"] * jax.random.normal(key, shape, h.dtype)


def _node_multiplicative(key, h, shape, hyper):
    return h * (1.0 + hyper["sigma"] * jax.random.normal(key, shape, h.dtype))


def fast_bernoulli(key, keep, shape):
    """Bernoulli(keep) masks from a counter-based hash, for masks too large for threefry.

    One threefry draw seeds a murmur3 ``fmix32`` finaliser applied to a counter;
    each 32-bit hash gives two 16-bit uniforms, so ``keep`` is resolved to
    2⁻¹⁶. Why: a per-example weight-dropout mask is batch × 120 × 84 ≈ 645k
    draws per step, and threefry made that step ~30 ms on this machine (two
    shared cores) against < 1 ms for the other noise models; the hash halves the
    bits and needs ~5 integer ops per word. Quality: dropout needs independent,
    unbiased coin flips, not cryptographic strength; ``test_geometry_noise``
    checks the keep rate and the correlation of neighbouring and successive masks.
    """
    n = int(np.prod(shape))
    seed = jax.random.bits(key, (2,), jnp.uint32)
    x = jax.lax.iota(jnp.uint32, (n + 1) // 2) * jnp.uint32(0x9E3779B9) + seed[0]
    x = x ^ seed[1]
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    x = x ^ (x >> 16)
    halves = jnp.stack([x & jnp.uint32(0xFFFF), x >> 16], axis=-1).reshape(-1)[:n]
    threshold = jnp.round(keep * 65536.0).astype(jnp.uint32)
    return (halves < threshold).reshape(shape)


def _weight_dropout(key, x, W, b, hyper, shared):
    keep = 1.0 - hyper["p"]
    if shared:
        return x @ (W * jax.random.bernoulli(key, keep, W.shape).astype(W.dtype) / keep) + b
    mask = fast_bernoulli(key, keep, (x.shape[0],) + W.shape).astype(W.dtype)
    return jnp.einsum("bi,ij,bij->bj", x, W, mask) / keep + b


class GeometryNoise(NoiseModel):
    """Base: minibatch cross-entropy through a (possibly perturbed) forward pass."""

    name = "sgd-minibatch"
    hyper = {}
    node_fn = None
    dense_fn = None
    requires = ("apply", "x_train", "y_train", "loss_fn")  # loss extras this model needs

    def __init__(self, layer: int = FEATURE_LAYER, batch: int = 64, period: int = 1, mask_key=None):
        if int(batch) < 1 or int(period) < 1 or int(layer) < 1:
            raise ValueError(f"{self.name}: batch, period and layer must be positive integers")
        self.layer, self.batch, self.period, self.mask_key = int(layer), int(batch), int(period), mask_key

    @property
    def forward_noise(self) -> bool:
        """True when the forward pass itself is noisy (responses are then noisy passes)."""
        return self.node_fn is not None or self.dense_fn is not None

    def held(self, mask_key):
        """This model with one mask (shared by all examples) drawn from ``mask_key``."""
        return type(self)(self.layer, self.batch, self.period, mask_key)

    def perturbation(self, key, hyper) -> Perturb:
        """The forward-pass perturbation for one pass (fresh per example unless held)."""
        if not self.forward_noise:
            return Perturb()
        shared = self.mask_key is not None
        return _LayerPerturb(self.layer, self.mask_key if shared else key, hyper,
                             self.node_fn, self.dense_fn, shared)

    def objective(self, loss, key, params, hyper):
        _require_network(loss, self.name)
        ex = loss.extras
        k_batch, k_noise = jax.random.split(key)
        idx = jax.random.randint(k_batch, (self.batch,), 0, ex["x_train"].shape[0])
        logits, _ = ex["apply"](params, ex["x_train"][idx], self.perturbation(k_noise, hyper))
        return ex["loss_fn"](logits, ex["y_train"][idx])

    def __repr__(self):
        return f"<noise {self.name} {dict(self.hyper)} layer={self.layer} batch={self.batch} period={self.period}>"


class NodeDropout(GeometryNoise):
    name, hyper = "node-dropout", {"p": 0.5}
    node_fn = staticmethod(_node_dropout)


class WeightDropout(GeometryNoise):
    name, hyper = "weight-dropout", {"p": 0.6}
    dense_fn = staticmethod(_weight_dropout)


class NodeAdditive(GeometryNoise):
    name, hyper = "node-additive", {"sigma": 0.1}
    node_fn = staticmethod(_node_additive)


class NodeMultiplicative(GeometryNoise):
    name, hyper = "node-multiplicative", {"sigma": 1.0}
    node_fn = staticmethod(_node_multiplicative)


def grad_additive(layer: int = FEATURE_LAYER, batch: int = 64, period: int = 1):
    """Minibatch SGD with additive gradient noise: ``sgd-minibatch`` composed with ``gradient`` (σ = 3 by default)."""
    model = compose_noise([GeometryNoise(layer, batch, period), GradientNoise()])
    model.hyper = dict(model.hyper, **{"gradient.sigma": 3.0})
    return model


MODELS = {m.name: m for m in (GeometryNoise, NodeDropout, WeightDropout, NodeAdditive, NodeMultiplicative)}
MODELS["grad-additive"] = grad_additive  # a composition (see the module docstring)


def dropout_penalty(p, a, h):
    """Explicit node-dropout penalty for MSE ½(y − a·h)²: p/(2(1−p)) · mean_x Σ_j a_j² h_j(x)².

    ``a`` (units,) read-out weights, ``h`` (examples, units) hidden activations.
    """
    return p / (2.0 * (1.0 - p)) * jnp.mean(jnp.sum((a * h) ** 2, axis=-1))


@hookimpl
def flatland_noise_models(register):
    register("sgd-minibatch", GeometryNoise, "minibatch SGD on a network task, no added noise (drift-geometry baseline)")
    register("node-dropout", NodeDropout, "node dropout p on a hidden layer, mask per unit and example (Aitken 2022)")
    register("weight-dropout", WeightDropout, "weight dropout p into a hidden layer, mask per example (Aitken 2022)")
    register("node-additive", NodeAdditive, "additive node noise N(0, σ²) on a hidden layer (Aitken 2022)")
    register("node-multiplicative", NodeMultiplicative, "multiplicative node noise N(1, σ²) on a hidden layer (Aitken 2022)")
    register("grad-additive", grad_additive,
             "sgd-minibatch + gradient: additive gradient noise N(0, σ²) on every parameter (composed)")
