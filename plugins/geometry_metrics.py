"""In-loop metrics for drift geometry on network tasks (pure JAX, logged by a simulator).

The full geometric analysis (PCA per group, γ, Γ, classifiers, controls) runs
after the simulation on recorded responses — :mod:`flatland.geometry` — because
it needs many responses per session and scikit-style post-processing. These
metrics are the cheap in-loop part, for a loss whose ``extras`` carry
``apply``, ``x_stim`` and ``y_stim`` (e.g. ``digits-mlp``):

* ``feature-means``: (groups, units) clean feature-layer mean per stimulus group;
* ``feature-dimension``: (groups,) participation ratio D of each group's clean responses;
* ``stimulus-accuracy``: clean accuracy on the held-out stimuli;
* ``readout``: the read-out weight matrix (classes, units).
"""
import jax.numpy as jnp

from flatland import Metric, hookimpl


def _features(params, loss):
    ex = loss.extras
    x = ex["x_stim"]
    G, M = x.shape[:2]
    logits, feats = ex["apply"](params, x.reshape(G * M, -1))
    return logits, feats.reshape(G, M, -1)


def feature_means(params, loss):
    return _features(params, loss)[1].mean(axis=1)


def feature_dimension(params, loss):
    """D = (Σλ)²/Σλ² of each group's covariance (eigvalsh of the centred Gram matrix)."""
    f = _features(params, loss)[1]
    fc = f - f.mean(axis=1, keepdims=True)
    lam = jnp.clip(jnp.linalg.eigvalsh(jnp.einsum("gmi,gni->gmn", fc, fc)), 0.0, None)
    return jnp.sum(lam, -1) ** 2 / jnp.maximum(jnp.sum(lam * lam, -1), 1e-30)


def stimulus_accuracy(params, loss):
    logits, _ = _features(params, loss)
    return jnp.mean(jnp.argmax(logits, -1) == loss.extras["y_stim"].reshape(-1))


def readout(params, loss):
    return params[-1][0].T


NEEDS = ("apply", "x_stim", "y_stim")


@hookimpl
def flatland_metrics(register):
    register("feature-means", lambda every=100: Metric("feature-means", feature_means, every, NEEDS),
             "clean feature-layer mean response per stimulus group (network tasks)")
    register("feature-dimension", lambda every=100: Metric("feature-dimension", feature_dimension, every, NEEDS),
             "participation ratio D of each stimulus group's clean feature responses")
    register("stimulus-accuracy", lambda every=100: Metric("stimulus-accuracy", stimulus_accuracy, every, NEEDS),
             "clean accuracy on the held-out stimulus groups")
    register("readout", lambda every=100: Metric("readout", readout, every, NEEDS),
             "read-out weight matrix (classes × feature units)")
