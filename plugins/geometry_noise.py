"""Noise models for drift geometry: noise inside a network's forward pass, and minibatch SGD.

The generic NoiseModel hooks see only params, so forward-pass noise goes
through the task: a loss whose ``extras`` carry ``apply(params, x, perturb)``,
``x_train``, ``y_train`` and ``loss_fn`` (see ``geometry_task``). Every model
here is a ``transform`` of that loss, so they compose with each other and
with the generic models (``flatland.compose_noise``):

* ``sgd-minibatch`` (factory option ``batch``, default 64): the step's loss is
  on ``batch`` training examples drawn with replacement (plain SGD);
* forward-pass noise on one hidden layer (``layer``, default the 84-unit
  feature layer), installed in the loss's ``apply``:
  ``node-dropout`` p: h ← h·m/(1−p), m ~ Bernoulli(1−p) per unit and example;
  ``weight-dropout`` p: each weight into the layer dropped with probability p,
  a fresh mask **per example** (one mask per pass shared by the batch does not
  work: it was measured not to), rescaled by 1/(1−p);
  ``node-additive`` σ: h ← h + N(0, σ²); ``node-multiplicative`` σ: h ← h·N(1, σ²).

Alone, a forward-noise model trains on the full training set; the
drift-geometry study (``flatland.geometry``) composes each with
``sgd-minibatch`` (``["node-dropout", "sgd-minibatch"]``, hyperparameter
``node-dropout.p``), and additive gradient noise is ``["sgd-minibatch",
"gradient"]`` — no "minibatch + X" model of its own.

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

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from flatland import NoiseModel, hookimpl, philox_words

from .geometry_task import FEATURE_LAYER, Perturb


_NETWORK = ("apply", "x_train", "y_train", "loss_fn")  # the loss extras these models need


def _require_network(loss, name):
    missing = [k for k in _NETWORK if k not in loss.extras]
    if missing:
        raise ValueError(f"noise model {name!r} acts inside a network's forward pass; loss {loss.name!r} "
                         f"lacks extras {', '.join(missing)} (use a task such as digits-mlp)")


class _LayerPerturb(Perturb):
    """Applies ``node_fn`` / ``dense_fn`` at ``layer`` only."""

    def __init__(self, layer, key, hyper, node_fn=None, dense_fn=None, shared=False):
        self.layer, self.key, self.hyper = layer, key, hyper
        self.node_fn, self.dense_fn, self.shared = node_fn, dense_fn, shared

    def replaces_dense(self, layer) -> bool:
        return self.dense_fn is not None and layer == self.layer

    def dense(self, layer, x, W, b):
        if not self.replaces_dense(layer):
            return x @ W + b
        return self.dense_fn(jax.random.fold_in(self.key, 1), x, W, b, self.hyper, self.shared)

    def nodes(self, layer, h):
        if self.node_fn is None or layer != self.layer:
            return h
        shape = h.shape[-1:] if self.shared else h.shape
        return self.node_fn(jax.random.fold_in(self.key, 2), h, shape, self.hyper)


class _Stacked(Perturb):
    """Two perturbations in one pass: node maps applied in turn; the dense map of the one that replaces it."""

    def __init__(self, first, second):
        self.parts = (first, second)

    def replaces_dense(self, layer) -> bool:
        return any(getattr(p, "replaces_dense", lambda _: False)(layer) for p in self.parts)

    def dense(self, layer, x, W, b):
        for p in self.parts:
            if getattr(p, "replaces_dense", lambda _: False)(layer):
                return p.dense(layer, x, W, b)
        return x @ W + b

    def nodes(self, layer, h):
        for p in self.parts:
            h = p.nodes(layer, h)
        return h


def _node_dropout(key, h, shape, hyper):
    keep = 1.0 - hyper["p"]
    return h * jax.random.bernoulli(key, keep, shape).astype(h.dtype) / keep


def _node_additive(key, h, shape, hyper):
    return h + hyper["sigma"] * jax.random.normal(key, shape, h.dtype)


def _node_multiplicative(key, h, shape, hyper):
    return h * (1.0 + hyper["sigma"] * jax.random.normal(key, shape, h.dtype))


def fast_bernoulli(key, keep, shape):
    """Bernoulli(keep) masks from Philox words (:func:`flatland.philox_words`), for masks too large for threefry.

    Each 32-bit word gives two 16-bit uniforms, so ``keep`` is resolved to 2⁻¹⁶.
    Why: a per-example weight-dropout mask is batch × 120 × 84 ≈ 645k draws per
    step, and threefry made that step ~30 ms on this machine (two shared cores)
    against < 1 ms for the other noise models; Philox4x32-10 (the generator of
    the engine's fast normals, known-answer tested) costs ~2.5 ns per word here
    and halves the words. ``test_geometry_noise`` checks the keep rate and the
    correlation of neighbouring and successive masks.
    """
    n = int(np.prod(shape))
    x = philox_words(key, (n + 1) // 2)
    halves = jnp.stack([x & jnp.uint32(0xFFFF), x >> 16], axis=-1).reshape(-1)[:n]
    threshold = jnp.round(keep * 65536.0).astype(jnp.uint32)
    return (halves < threshold).reshape(shape)


def _weight_dropout(key, x, W, b, hyper, shared):
    keep = 1.0 - hyper["p"]
    if shared:
        return x @ (W * jax.random.bernoulli(key, keep, W.shape).astype(W.dtype) / keep) + b
    mask = fast_bernoulli(key, keep, (x.shape[0],) + W.shape).astype(W.dtype)
    return jnp.einsum("bi,ij,bij->bj", x, W, mask) / keep + b


def _data_loss(loss, extras):
    """``loss`` rebuilt on ``extras``: loss_fn(apply(params, x_train), y_train) through extras' forward pass.

    Both kinds of model below change extras (the minibatch the rows, forward
    noise the pass) and rebuild the value from them, so they chain in either order.
    """
    def value(params):
        return extras["loss_fn"](extras["apply"](params, extras["x_train"])[0], extras["y_train"])

    return dataclasses.replace(loss, value=value, residuals=None, extras=extras)


class SgdMinibatch(NoiseModel):
    """Minibatch SGD on a network task: each step fits ``batch`` training examples drawn with replacement."""

    name = "sgd-minibatch"
    hyper = {}
    requires = _NETWORK

    def __init__(self, batch: int = 64):
        if int(batch) < 1:
            raise ValueError(f"{self.name}: batch must be a positive integer, got {batch!r}")
        self.batch = int(batch)

    def transform(self, loss, key, hyper):
        """The loss on ``batch`` rows of the training set drawn afresh for this step."""
        _require_network(loss, self.name)
        ex = loss.extras
        idx = jax.random.randint(key, (self.batch,), 0, ex["x_train"].shape[0])
        return _data_loss(loss, dict(ex, x_train=ex["x_train"][idx], y_train=ex["y_train"][idx]))

    def __repr__(self):
        return f"<noise {self.name} batch={self.batch}>"


class ForwardNoise(NoiseModel):
    """Base of the forward-pass noise models: a perturbation of one hidden layer, fresh per example and pass."""

    hyper = {}
    node_fn = None
    dense_fn = None
    requires = _NETWORK

    def __init__(self, layer: int = FEATURE_LAYER, period: int = 1, mask_key=None):
        if int(period) < 1 or int(layer) < 1:
            raise ValueError(f"{self.name}: period and layer must be positive integers, got {period!r}, {layer!r}")
        self.layer, self.period, self.mask_key = int(layer), int(period), mask_key

    def held(self, mask_key):
        """This model with one mask (shared by all examples) drawn from ``mask_key``."""
        return type(self)(self.layer, self.period, mask_key)

    def perturbation(self, key, hyper) -> Perturb:
        """The forward-pass perturbation for one pass (fresh per example unless held)."""
        shared = self.mask_key is not None
        return _LayerPerturb(self.layer, self.mask_key if shared else key, hyper,
                             self.node_fn, self.dense_fn, shared)

    def transform(self, loss, key, hyper):
        """The loss whose forward pass (``extras["apply"]``) carries this step's perturbation.

        A perturbation passed to the new ``apply`` (another forward noise
        composed after this one) is stacked after this one: members act in
        the listed order.
        """
        _require_network(loss, self.name)
        ex = loss.extras
        inner, mine = ex["apply"], self.perturbation(key, hyper)

        def apply(params, x, perturb=None):
            return inner(params, x, mine if perturb is None else _Stacked(mine, perturb))

        return _data_loss(loss, dict(ex, apply=apply))

    def __repr__(self):
        return f"<noise {self.name} {dict(self.hyper)} layer={self.layer} period={self.period}>"


class NodeDropout(ForwardNoise):
    name, hyper = "node-dropout", {"p": 0.5}
    node_fn = staticmethod(_node_dropout)


class WeightDropout(ForwardNoise):
    name, hyper = "weight-dropout", {"p": 0.6}
    dense_fn = staticmethod(_weight_dropout)


class NodeAdditive(ForwardNoise):
    name, hyper = "node-additive", {"sigma": 0.1}
    node_fn = staticmethod(_node_additive)


class NodeMultiplicative(ForwardNoise):
    name, hyper = "node-multiplicative", {"sigma": 1.0}
    node_fn = staticmethod(_node_multiplicative)


MODELS = {m.name: m for m in (SgdMinibatch, NodeDropout, WeightDropout, NodeAdditive, NodeMultiplicative)}


def dropout_penalty(p, a, h):
    """Explicit node-dropout penalty for MSE ½(y − a·h)²: p/(2(1−p)) · mean_x Σ_j a_j² h_j(x)².

    ``a`` (units,) read-out weights, ``h`` (examples, units) hidden activations.
    """
    return p / (2.0 * (1.0 - p)) * jnp.mean(jnp.sum((a * h) ** 2, axis=-1))


@hookimpl
def flatland_noise_models(register):
    register("sgd-minibatch", SgdMinibatch, "minibatch SGD on a network task (factory option batch, default 64)")
    register("node-dropout", NodeDropout, "node dropout p on a hidden layer, mask per unit and example (Aitken 2022); compose with sgd-minibatch")
    register("weight-dropout", WeightDropout, "weight dropout p into a hidden layer, mask per example (Aitken 2022); compose with sgd-minibatch")
    register("node-additive", NodeAdditive, "additive node noise N(0, σ²) on a hidden layer (Aitken 2022); compose with sgd-minibatch")
    register("node-multiplicative", NodeMultiplicative, "multiplicative node noise N(1, σ²) on a hidden layer (Aitken 2022); compose with sgd-minibatch")
