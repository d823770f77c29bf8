"""Task + network → a flatland ``Loss`` (the factory behind the relu loss plugins).

What: ``make_loss(task_name, **options)`` splits ``options`` into task
parameters (see :mod:`.tasks`), network parameters (``n_hid``, ``activation``,
``regime``, ``dtype``, ``alpha``) and rate-map parameters (``n_bins``,
``n_shuffles``, ``shuffle_seed``, ``place_threshold``, ``probe_samples``), generates the data, and returns a
:class:`flatland.Loss` with ``residuals(params) = f(X) − Y`` of shape
(T, d_out), κ = 1/(T·d_out) (mean squared error, the paper's loss),
``init(key)`` drawing the paper's initialisation, and
``extras["relu"]`` — the context every relu metric, Hessian functional and the
run extension read: spec, X, Y (as arrays of the run's dtype), kappa, var_y,
positions and binning — ``extras["responses"]``, the hidden layer's
activity per input (T, n_hid) that the ``responses`` metric records — and, for a task with positions, ``extras["place"]``
(the binning), which the place-field metrics declare in ``requires``; ``extras["relu"]["probe"]()`` builds
the probe walk's context (inputs, binning) on first call. d_in/d_out follow from the task; an explicit ``d_in``/``d_out``
option is passed to the task where the task takes it.
"""
from __future__ import annotations

import inspect

import jax.numpy as jnp
import numpy as np

from flatland import Loss, UserError

from . import metrics as M
from .network import NetSpec, activation_fn, forward, hidden, init_params
from .tasks import TASKS, probe_walk

NET_KEYS = ("n_hid", "activation", "regime", "dtype", "alpha")
PLACE_KEYS = ("n_bins", "n_shuffles", "shuffle_seed", "place_threshold")
PROBE_KEYS = ("probe_samples",)
PROBE_PER_BIN = 150  # default probe length per rate-map bin (the training set has 1.5 at T = 150, 100 bins)


def task_keys(task_name):
    return tuple(inspect.signature(TASKS[task_name]).parameters)


def _check_alpha(task_name: str, options: dict) -> None:
    """``alpha`` is the leaky-ReLU slope: a number, and given only with that activation (it was accepted with
    ``activation = "relu"`` and silently unused)."""
    if "alpha" not in options:
        return
    alpha, activation = options["alpha"], options.get("activation", NetSpec.activation)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not np.isfinite(alpha):
        raise UserError(f"task {task_name!r}: alpha (the leaky-ReLU slope below 0) must be a number, got {alpha!r}")
    if activation != "leaky-relu":
        raise UserError(f"task {task_name!r}: alpha is the leaky-ReLU slope and does nothing with activation = "
                        f"{activation!r}; drop it, or set activation = \"leaky-relu\"")


class LazyProbe:
    """``ctx["probe"]()``: the probe walk's context (:func:`metrics.probe_context`), built on the first call and
    kept; a plain object, so a context holding it still pickles."""

    def __init__(self, data, n, dtype, place_options):
        self.data, self.n, self.dtype, self.place_options = data, n, dtype, place_options
        self.value = None

    def __call__(self):
        if self.value is None:
            walk = probe_walk(self.data, self.n)
            self.value = M.probe_context(walk, self.data.track, self.dtype, **self.place_options)
        return self.value


def _probe_samples(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise UserError(f"probe_samples (the length of the probe walk for si_probe metrics) must be a whole number "
                        f"≥ 2, got {n!r}")
    return int(n)


def make_loss(task_name: str, **options) -> Loss:
    """Build the Loss of ``task_name`` with the given task/network/rate-map options."""
    if task_name not in TASKS:
        raise UserError(f"unknown relu task {task_name!r} (known: {', '.join(TASKS)})")
    tkeys = task_keys(task_name)
    unknown = sorted(set(options) - set(tkeys) - set(NET_KEYS) - set(PLACE_KEYS) - set(PROBE_KEYS))
    if unknown:
        known = ", ".join(sorted(set(tkeys) | set(NET_KEYS) | set(PLACE_KEYS) | set(PROBE_KEYS)))
        raise UserError(f"unknown option(s) {', '.join(unknown)} for task {task_name!r} (known: {known})")
    seed = options.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"task {task_name!r}: seed must be a whole number ≥ 0, got {seed!r}")
    _check_alpha(task_name, options)
    data = TASKS[task_name](**{k: v for k, v in options.items() if k in tkeys})
    net = {k: options[k] for k in NET_KEYS if k in options}
    spec = NetSpec(d_in=data.X.shape[1], d_out=data.Y.shape[1], **net)
    dt = spec.jdtype
    X = jnp.asarray(data.X, dt)
    Y = jnp.asarray(data.Y, dt)
    var_y = float(np.mean((data.Y - data.Y.mean(0)) ** 2))
    kappa = 1.0 / Y.size
    ctx = {"spec": spec, "X": X, "Y": Y, "kappa": kappa, "var_y": var_y, "task": data,
           "place": None}
    rate_map_keys = sorted(k for k in (*PLACE_KEYS, *PROBE_KEYS) if k in options)
    if data.pos is None and rate_map_keys:
        raise UserError(f"task {task_name!r} has no positions, so no rate maps: drop {', '.join(rate_map_keys)} (they "
                        "apply to corridor and circular-track)")
    if data.pos is not None:
        pk = {k: options[k] for k in PLACE_KEYS if k in options}
        ctx["place"] = M.place_context(data.pos, data.direction, data.track, **pk)
        n_probe = _probe_samples(options.get("probe_samples", PROBE_PER_BIN * ctx["place"]["n_bins"]))
        ctx["probe"] = LazyProbe(data, n_probe, dt, pk)

    def residuals(params):
        return forward(params, X, spec) - Y

    act = activation_fn(spec)

    def apply(params, x, perturb=None):
        """(output, hidden) with an optional forward-pass perturbation at the hidden layer (layer 1): the
        network as the forward-noise models (node/weight dropout, node noise, minibatch SGD) see it."""
        if perturb is None:
            h = hidden(params, x, spec)
        else:
            h = perturb.nodes(1, act(perturb.dense(1, x, params["W"].T, params["b"])))
        return h @ params["V"].T, h

    return Loss(
        name=task_name,
        residuals=residuals,
        kappa=kappa,
        init=lambda key: init_params(spec, key),
        extras={"relu": ctx, "responses": lambda params: hidden(params, X, spec),
                # the forward pass that forward-noise models perturb; loss_fn on all of X, Y is this loss
                "apply": apply, "x_train": X, "y_train": Y, "loss_fn": lambda out, y: jnp.mean((out - y) ** 2)}
        | ({"place": ctx["place"]} if ctx["place"] is not None else {}),
    )
