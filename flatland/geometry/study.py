"""A drift-geometry study: several noise types continued from the same pretrained networks.

``run_study`` assembles the digits task, the ``sgd-momentum-l2`` learner and
the noise models by name from the plugin registry, pretrains R networks once,
optionally matches each noise type's hyperparameter for drift magnitude
(clean drift per interval equal to the reference type's), runs every noise
type from the same weights, and measures everything with
:func:`flatland.geometry.measure` (resampling controls included).
"""
from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from .analysis import Measurement, measure
from .experiment import DEFAULT, Protocol, SessionData, drift_size_sweep, match_value, pretrain, run_noise

#: noise type -> (composed noise models, hyperparameter name, paper's value, sweep grid for magnitude matching)
NOISE_TYPES = {
    "sgd-minibatch": (("sgd-minibatch",), None, None, None),
    "node-dropout": (("node-dropout", "sgd-minibatch"), "node-dropout.p", 0.5, (0.2, 0.35, 0.5, 0.65, 0.8)),
    "weight-dropout": (("weight-dropout", "sgd-minibatch"), "weight-dropout.p", 0.6, (0.4, 0.6, 0.8, 0.9)),
    "node-additive": (("node-additive", "sgd-minibatch"), "node-additive.sigma", 0.1, (0.1, 0.3, 1.0, 3.0)),
    "node-multiplicative": (("node-multiplicative", "sgd-minibatch"), "node-multiplicative.sigma", 1.0,
                            (0.3, 0.6, 1.0, 1.5)),
    "grad-additive": (("sgd-minibatch", "gradient"), "gradient.sigma", 3.0, (0.001, 0.003, 0.01, 0.03)),
}

QUICK = Protocol(pretrain=1500, burnin=390, sessions=4, interval=390)


@dataclasses.dataclass
class NoiseResult:
    """One noise type's sessions, measurement and how its hyperparameter was chosen."""

    name: str
    hyper: dict
    data: SessionData
    measurement: Measurement
    seconds: float
    matching: dict | None = None


def _components(names):
    """The digits task, the paper's learner and each noise type's composed model, from the registry."""
    from ..assembly import assemble
    from ..composition import compose_noise

    reg = assemble().registry
    loss = reg.create("losses", "digits-mlp")
    learner = reg.create("learners", "sgd-momentum-l2")
    noises = {n: compose_noise([reg.create("noise", m) for m in NOISE_TYPES[n][0]]) for n in names}
    return loss, learner, noises


def run_study(names=tuple(NOISE_TYPES), hypers: dict | None = None, protocol: Protocol = DEFAULT,
              runs: int = 2, seed: int = 0, match_to: str | None = None, log=None, progress=None) -> dict:
    """Run each noise type in ``names`` from the same R = ``runs`` pretrained networks.

    ``hypers`` overrides hyperparameters per name. With ``match_to`` (a name),
    every other type with a hyperparameter gets the value whose clean drift
    per interval equals ``match_to``'s (sweep over ``NOISE_TYPES`` grids).
    ``log(message)`` gets a line per stage; ``progress(done, total, note)`` the
    stages done so far (pretraining, each matching sweep, each noise type).
    """
    log = log or (lambda msg: None)
    hypers = dict(hypers or {})
    to_match = [] if match_to is None else [n for n in names if n != match_to and NOISE_TYPES[n][1] is not None
                                            and n not in hypers]
    total = 1 + (len(to_match) + 1 if match_to is not None else 0) + len(names)
    done = [0]

    def stage(note):
        log(note)
        done[0] += 1
        if progress is not None:
            progress(done[0], total, note)

    loss, learner, noises = _components(names)
    key = jax.random.PRNGKey(seed)
    k_pre, k_runs, k_match = jax.random.split(key, 3)
    t0 = time.time()
    params0 = pretrain(loss, noises.get("sgd-minibatch") or _components(["sgd-minibatch"])[2]["sgd-minibatch"],
                       learner, jax.random.split(k_pre, runs), protocol)
    stage(f"pretrained {runs} network(s) in {time.time() - t0:.0f}s")
    matching = {}
    if match_to is not None:
        _, target_name, paper, _ = NOISE_TYPES[match_to]
        h = hypers.get(match_to, {target_name: paper})
        target = float(drift_size_sweep(loss, noises[match_to], learner, params0, k_match, target_name,
                                        [h[target_name]], protocol)[0])
        stage(f"{match_to}: clean drift {target:.3g} per interval (the target)")
        for n in names:
            _, hname, _, grid = NOISE_TYPES[n]
            if n == match_to or hname is None or n in hypers:
                continue
            drifts = drift_size_sweep(loss, noises[n], learner, params0, k_match, hname, grid, protocol)
            value = match_value(grid, drifts, target)
            hypers[n] = {hname: value}
            matching[n] = {"target": target, "grid": list(grid), "drifts": drifts.tolist(), "value": value,
                           "extrapolated": not (min(drifts) <= target <= max(drifts))}
            edge = "" if not matching[n]["extrapolated"] else (
                f" — NOT matched: target outside the sweep's drifts {np.round(drifts, 3).tolist()}, clamped to the grid edge")
            stage(f"matched {n}: {hname} = {value:.4g} (clean drift {target:.3g} per interval){edge}")
    results = {}
    keys = jax.random.split(k_runs, runs)
    for n in names:
        _, hname, paper, _ = NOISE_TYPES[n]
        h = hypers.get(n, {} if hname is None else {hname: paper})
        t = time.time()
        data = run_noise(loss, noises[n], learner, params0, keys, h, protocol)
        m = Measurement.concat([measure(data.A[r], data.B[r], data.readout[r]) for r in range(runs)])
        results[n] = NoiseResult(n, data.hyper, data, m, time.time() - t, matching.get(n))
        stage(f"{n} {data.hyper}: {time.time() - t:.0f}s, accuracy {np.round(data.accuracy.mean(0), 3).tolist()}")
    return results
