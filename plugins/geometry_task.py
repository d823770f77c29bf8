"""The digits task for drift geometry: an MLP 64→120→84→10 on scikit-learn's digits.

Why digits: a small *real* image set that ships with a declared dependency
(scikit-learn), so the task runs offline. The 84-unit second hidden layer is
the feature layer whose responses drift (as in Aitken et al. 2022's CNN).

The :class:`~flatland.Loss` carries in ``extras``:

* ``apply(params, x, perturb=None) -> (logits, features)``: the forward pass.
  ``perturb`` (see :class:`Perturb`) may replace a hidden layer's dense map
  (weight noise) and modify its activations (node noise); this is how noise
  models reach *inside* the forward pass, which the generic NoiseModel hooks
  cannot.
* ``x_train``/``y_train``: training images and labels (minibatches are drawn
  by the noise models' objectives); ``x_stim`` (groups, repeats, 64) held-out
  images arranged by class — the stimulus groups — and ``y_stim``;
* ``feature_layer`` (2) and ``sizes``;
* ``responses(params)``: the clean feature layer's responses to the held-out
  stimuli, class after class (stimuli × 84), which the ``responses`` metric
  records for ``flatland record``/``flatland infer``.

Also registers the learner ``sgd-momentum-l2``: SGD with momentum 0.9 and L2
weight decay (optax ``add_decayed_weights`` then ``sgd``), the paper's optimiser.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from flatland import Loss, hookimpl, optax_learner

SIZES = (64, 120, 84, 10)
FEATURE_LAYER = 2  # hidden layers are 1 (120 units) and 2 (84 units, the feature layer)
DTYPE = jnp.float32


class Perturb:
    """No perturbation: the clean forward pass. Noise models subclass this.

    ``dense(layer, x, W, b)`` computes a hidden layer's pre-activation from its
    input ``x`` (batch, n_in); ``nodes(layer, h)`` may modify its activations.
    """

    def dense(self, layer, x, W, b):
        return x @ W + b

    def nodes(self, layer, h):
        return h


CLEAN = Perturb()


def apply(params, x, perturb: Perturb | None = None):
    """Forward pass: ReLU hidden layers, linear read-out. Returns (logits, feature activations)."""
    perturb = perturb or CLEAN
    h = x
    features = None
    for layer, (W, b) in enumerate(params[:-1], start=1):
        h = perturb.nodes(layer, jax.nn.relu(perturb.dense(layer, h, W, b)))
        if layer == FEATURE_LAYER:
            features = h
    W, b = params[-1]
    return h @ W + b, features


def init_params(key, sizes=SIZES):
    """He-uniform weights, zero biases, float32."""
    params = []
    for k, (a, b) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        lim = np.sqrt(6.0 / a)
        params.append((jax.random.uniform(k, (a, b), DTYPE, -lim, lim), jnp.zeros((b,), DTYPE)))
    return params


@functools.lru_cache(maxsize=8)
def digits_data(split_seed: int = 0, per_class: int = 40):
    """Digits scaled to [0, 1]; ``per_class`` held-out images of each class become the stimulus groups."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    rng = np.random.default_rng(split_seed)
    stim_idx = []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        if per_class >= idx.size:
            raise ValueError(f"per_class={per_class} leaves no training images of class {c} ({idx.size} in all)")
        stim_idx.append(rng.choice(idx, per_class, replace=False))
    stim_idx = np.stack(stim_idx)
    train = np.setdiff1d(np.arange(len(y)), stim_idx.ravel())
    return X[train], y[train].astype(np.int32), X[stim_idx], y[stim_idx].astype(np.int32)


def cross_entropy(logits, labels):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def digits_mlp(split_seed: int = 0, per_class: int = 40) -> Loss:
    """The digits MLP task as a Loss; ``value(params)`` is the full-batch training cross-entropy."""
    x_tr, y_tr, x_st, y_st = digits_data(split_seed, per_class)
    x_tr, y_tr = jnp.asarray(x_tr), jnp.asarray(y_tr)
    stim = jnp.asarray(x_st).reshape(-1, x_st.shape[-1])     # class by class: groups of consecutive stimuli

    def value(params):
        return cross_entropy(apply(params, x_tr)[0], y_tr)

    return Loss(
        name="digits-mlp", value=value, init=init_params,
        extras={
            "apply": apply, "x_train": x_tr, "y_train": y_tr, "x_stim": jnp.asarray(x_st),
            "y_stim": jnp.asarray(y_st), "feature_layer": FEATURE_LAYER, "sizes": SIZES,
            "loss_fn": cross_entropy, "responses": lambda params: apply(params, stim)[1],
        },
    )


def sgd_momentum_l2(learning_rate=0.1, weight_decay=1e-3):
    """optax: L2 decay (added to the gradient) then SGD with momentum 0.9."""
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum=0.9))


@hookimpl
def flatland_losses(register):
    register("digits-mlp", digits_mlp, "scikit-learn digits, MLP 64→120→84→10 (feature layer 84); extras carry a noisy forward")


@hookimpl
def flatland_learners(register):
    register("sgd-momentum-l2",
             lambda: optax_learner("sgd-momentum-l2", sgd_momentum_l2, learning_rate=0.1, weight_decay=1e-3),
             "SGD momentum 0.9 with L2 weight decay 1e-3 (Aitken et al. 2022's optimiser)")
