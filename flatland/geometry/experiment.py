"""Continued-training experiments: sessions of a network trained on with a noise model.

Protocol (Aitken et al. 2022, adapted to digits, see ``DEFAULT``): a network is
pretrained with plain minibatch SGD to a steady accuracy; from those weights it
is trained on with a noise model for ``burnin`` steps, rounded up to whole
intervals (so the noise's own
steady state is reached), then for ``sessions − 1`` intervals of ``interval``
steps; the weights at the start of each session are snapshots. At each
snapshot the feature layer's responses to the held-out stimuli are recorded
twice, with independent forward-pass noise (sets A and B: the second one is
the resampling control's independent set of passes), together with the clean
held-out accuracy and the read-out weights.

Everything is one ``jit(vmap(scan))`` per noise model: seeds (and, for
calibration, hyperparameter values) are ``vmap`` axes; hyperparameters are
float32 array leaves, so a new value never recompiles.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..stepping import make_step

F32 = jnp.float32


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Step counts and optimiser settings of a continued-training experiment."""

    pretrain: int = 4000
    burnin: int = 1560
    sessions: int = 6
    interval: int = 780
    learning_rate: float = 0.1
    weight_decay: float = 1e-3
    record: str = "noisy"  # "noisy": responses are noisy forward passes; "clean": noise-free passes


DEFAULT = Protocol()


def f32_hyper(d) -> dict:
    return {k: jnp.asarray(v, F32) for k, v in dict(d).items()}


def _members(noise):
    """A composed model's members, or the model itself."""
    return list(getattr(noise, "members", [noise]))


def mask_period(noise) -> int:
    """Steps one forward-noise mask is held for: the largest ``period`` a member states (1 if none)."""
    return max(int(getattr(m, "period", 1)) for m in _members(noise))


def held(noise, mask_key):
    """``noise`` with every member that can hold a mask (``held(key)``) holding the one drawn from ``mask_key``."""
    if not hasattr(noise, "members"):
        return noise.held(mask_key) if hasattr(noise, "held") else noise
    return type(noise)([m.held(mask_key) if hasattr(m, "held") else m for m in noise.members])


def make_train(loss, noise, learner, n_steps: int):
    """``train(key, params, state, hyper, t0) -> (params, state)``: ``n_steps`` steps in one ``lax.scan``.

    With a mask period k > 1 (:func:`mask_period`) one mask, drawn from
    ``fold_in(key, (t0+t)//k)``, is held for k steps.
    """
    period = mask_period(noise)

    def train(key, params, state, hyper, t0=0):
        k_steps, k_masks = jax.random.split(key)

        def body(carry, t):
            params, state = carry
            model = noise
            if period > 1:
                model = held(noise, jax.random.fold_in(k_masks, (t0 + t) // period))
            step = make_step(loss, model, learner)
            params, state, _ = step(jax.random.fold_in(k_steps, t), params, state, hyper)
            return (params, state), None

        (params, state), _ = jax.lax.scan(body, (params, state), jnp.arange(n_steps))
        return params, state

    return train


def pretrain(loss, plain, learner, keys, protocol: Protocol = DEFAULT):
    """Initialise and pretrain one network per key with plain minibatch SGD; returns stacked params."""
    hyper = {"learner": f32_hyper({"lr": protocol.learning_rate, "weight_decay": protocol.weight_decay}),
             "noise": {}}
    train = make_train(loss, plain, learner, protocol.pretrain)

    def one(key):
        k_init, k_train = jax.random.split(key)
        params = loss.initial_params(k_init)
        params, _ = train(k_train, params, learner.init(params, hyper["learner"]), hyper)
        return params

    return jax.jit(jax.vmap(one))(keys)


def continue_sessions(loss, noise, learner, protocol: Protocol = DEFAULT):
    """``run(key, params0, noise_hyper) -> snapshots`` (params stacked over sessions), vmappable.

    The burn-in is ⌈burnin / interval⌉ extra intervals whose snapshots are
    dropped, so the whole run is one scan over intervals (one compiled body).
    """
    inter = make_train(loss, noise, learner, protocol.interval)
    lhyper = f32_hyper({"lr": protocol.learning_rate, "weight_decay": protocol.weight_decay})
    n_burn = -(-protocol.burnin // protocol.interval)

    def run(key, params0, noise_hyper):
        hyper = {"learner": lhyper, "noise": noise_hyper}
        state = learner.init(params0, lhyper)

        def session(carry, s):
            params, state = carry
            new = inter(jax.random.fold_in(key, s), params, state, hyper, s * protocol.interval)
            return new, params

        _, snaps = jax.lax.scan(session, (params0, state), jnp.arange(n_burn + protocol.sessions))
        return jax.tree_util.tree_map(lambda a: a[n_burn:], snaps)

    return run


def recorder(loss, noise, noisy: bool = True):
    """``record(params, key, noise_hyper) -> (A, B, accuracy, readout, clean_means)`` for one snapshot.

    A and B: feature-layer responses (groups, repeats, units) to the held-out
    stimuli, two independent sets of (noisy) forward passes; accuracy: clean
    held-out accuracy; readout: (classes, units) read-out weights;
    clean_means: (groups, units) group means of noise-free responses. With
    ``noisy=False`` A and B are noise-free passes (then identical).
    """
    ex = loss.extras
    x, y = ex["x_stim"], ex["y_stim"]
    G, M = x.shape[:2]
    flat = x.reshape(G * M, -1)

    def record(params, key, noise_hyper):
        def passes(k):
            # the forward pass as the noise model's transform leaves it: noisy where the model acts inside it
            forward = noise.transform(loss, k, noise_hyper).extras["apply"] if noisy else ex["apply"]
            _, feats = forward(params, flat)
            return feats.reshape(G, M, -1)

        ka, kb = jax.random.split(key)
        logits, clean = ex["apply"](params, flat)
        acc = jnp.mean(jnp.argmax(logits, -1) == y.reshape(-1))
        return passes(ka), passes(kb), acc, params[-1][0].T, clean.reshape(G, M, -1).mean(1)

    return record


@dataclasses.dataclass
class SessionData:
    """Recorded sessions of R runs: A, B (R, S, G, M, N); accuracy (R, S); readout (R, S, C, N);
    clean (R, S, G, N) noise-free group means."""

    noise: str
    hyper: dict
    A: np.ndarray
    B: np.ndarray
    accuracy: np.ndarray
    readout: np.ndarray
    clean: np.ndarray

    def clean_drift(self) -> np.ndarray:
        """‖Δx̄_clean‖/‖x̄_clean‖ between consecutive sessions, (R, S−1, G): the network's own drift."""
        c = self.clean
        return np.linalg.norm(c[:, 1:] - c[:, :-1], axis=-1) / np.linalg.norm(c[:, :-1], axis=-1)


def run_noise(loss, noise, learner, params0, keys, noise_hyper, protocol: Protocol = DEFAULT) -> SessionData:
    """Continue R pretrained networks (``params0`` stacked, one key each) under ``noise``; record sessions."""
    nh = f32_hyper(noise_hyper)
    if protocol.record not in ("noisy", "clean"):
        raise ValueError(f"protocol.record must be 'noisy' or 'clean', got {protocol.record!r}")
    run = continue_sessions(loss, noise, learner, protocol)
    rec = recorder(loss, noise, protocol.record == "noisy")

    def one(key, p0):
        k_run, k_rec = jax.random.split(key)
        snaps = run(k_run, p0, nh)
        rkeys = jax.random.split(k_rec, protocol.sessions)
        return jax.vmap(rec, in_axes=(0, 0, None))(snaps, rkeys, nh)

    A, B, acc, W, C = jax.jit(jax.vmap(one))(keys, params0)
    return SessionData(noise.name, {k: float(v) for k, v in dict(noise_hyper).items()},
                       *(np.asarray(a, float) for a in (A, B, acc, W, C)))


def drift_size_sweep(loss, noise, learner, params0, key, name: str, values, protocol: Protocol) -> np.ndarray:
    """Clean drift per interval (mean over groups and the first pretrained networks) per value of ``name``.

    One ``vmap`` over the values; each value continues the first ``n`` pretrained
    networks for ``burnin`` + one ``interval`` and measures ‖Δx̄_clean‖/‖x̄_clean‖.
    Used to match noise types for drift magnitude.
    """
    short = dataclasses.replace(protocol, sessions=2)
    run = continue_sessions(loss, noise, learner, short)
    rec = recorder(loss, noise)
    base = {k: jnp.asarray(v, F32) for k, v in noise.hyper.items()}
    R = jax.tree_util.tree_leaves(params0)[0].shape[0]
    keys = jax.random.split(key, R)

    def one(value):
        nh = dict(base, **{name: value})

        def per_run(k, p0):
            snaps = run(k, p0, nh)
            c0 = rec(jax.tree_util.tree_map(lambda a: a[0], snaps), k, nh)[4]
            c1 = rec(jax.tree_util.tree_map(lambda a: a[1], snaps), k, nh)[4]
            return jnp.mean(jnp.linalg.norm(c1 - c0, axis=-1) / jnp.linalg.norm(c0, axis=-1))

        return jnp.mean(jax.vmap(per_run)(keys, params0))

    return np.asarray(jax.jit(jax.vmap(one))(jnp.asarray(values, F32)), float)


def match_value(values, drifts, target: float) -> float:
    """The hyperparameter value whose drift equals ``target``, by log-log interpolation of a monotone sweep."""
    v, d = np.log(np.asarray(values, float)), np.log(np.maximum(np.asarray(drifts, float), 1e-12))
    order = np.argsort(d)
    return float(np.exp(np.interp(np.log(target), d[order], v[order])))
