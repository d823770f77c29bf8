"""The paper's ReLU predictive-coding network as flatland plugins (Ratzon, Derdikman & Barak, eLife 2024, Fig 2).

Losses (tasks × network): ``corridor`` (the Fig 2 task), ``circular-track``,
``random-mapping``, ``smoothed-mapping`` — each ``create("losses", name,
seed=…, n_hid=…, dtype=…, …)``. Metrics: normalised loss, active fraction,
active units, SI, shuffle-corrected SI (on the training samples, and on a dense probe walk of the same
track), place cells, tr H and the Gauss–Newton
Hessian functionals, all pure JAX for in-loop logging (place-field metrics
require ``extras["place"]``, a task with positions). Run extension ``relu``
(:mod:`.extension`): what ``flatland run`` adds for these tasks. Checks: the
``relu`` suite (see :mod:`.checks`). Modules: tasks, network, model, metrics,
hessian, phases, checks, sparse, extension, figures.
"""
from flatland import Metric, hookimpl

from . import metrics as M
from .model import make_loss


def _task_factory(name):
    def factory(**options):
        return make_loss(name, **options)
    return factory


def _ctx(loss):
    ctx = getattr(loss, "extras", {}).get("relu")
    if ctx is None:
        raise ValueError(f"metric needs a relu-network loss (extras['relu']); {getattr(loss, 'name', loss)!r} is not one")
    return ctx


def _metric(name, fn, every=100, needs_place=False):
    def factory(every=every):
        def f(params, loss):
            ctx = _ctx(loss)
            if needs_place and ctx["place"] is None:
                raise ValueError(f"metric {name} needs positions; task {loss.name!r} has none")
            return fn(params, ctx)
        return Metric(name, f, every, requires=("relu", "place") if needs_place else ("relu",))
    return factory


@hookimpl
def flatland_losses(register):
    register("corridor", _task_factory("corridor"),
             "paper Fig 2: predictive coding in a textured corridor, 18→500 ReLU→17 network, MSE")
    register("circular-track", _task_factory("circular-track"),
             "simplified predictive coding on a circular track (no velocity input), ReLU network")
    register("random-mapping", _task_factory("random-mapping"),
             "uniform random inputs → uniform random targets, ReLU network")
    register("smoothed-mapping", _task_factory("smoothed-mapping"),
             "Gaussian-smoothed random mapping, ReLU network")


METRICS = {  # name: (needs positions, summary); functions are metrics.FUNCS[name]
    "loss_norm": (False, "relu net: MSE / Var(Y)"),
    "active_fraction": (False, "relu net: mean of the inputs×units matrix [pre-activation > 0]"),
    "active_units": (False, "relu net: fraction of hidden units active on at least one input"),
    "si": (True, "relu net: mean Skaggs spatial information (bits) over place cells (SI > 0.01)"),
    "si_corrected": (True, "relu net: mean over active units of SI minus its mean under time shuffles"),
    "place_cells": (True, "relu net: number of units with SI > 0.01 bits (at T = 150 all active units: bias)"),
    "place_cells_significant": (True, "relu net: units with SI > 0.01 bits that also beat all their time shuffles"),
    "si_probe": (True, "relu net: mean SI over active units with rate maps on a dense probe walk (~150 samples a bin)"),
    "si_probe_corrected": (True, "relu net: si_probe minus each unit's mean SI under the probe's time shuffles"),
    "hess_trace": (False, "relu net: tr H = 2κ‖J‖²_F from the network's structure (exact for ReLU), no eigensolve"),
}


@hookimpl
def flatland_metrics(register):
    from .hessian import gn_functionals
    for name, (needs_place, summary) in METRICS.items():
        register(name, _metric(name, M.FUNCS[name], needs_place=needs_place), summary)
    register("hessian_gn", _metric("hessian_gn", gn_functionals, every=10000),
             "relu net: Gauss–Newton Hessian trace, #zero eigenvalues, Σlog nonzero, λmax (exact eigh; the "
             "zero count is capped by rank ≤ T·d_out, so once P − T·d_out exceeds the inactive units' rows it "
             "shows the cap, not sparsification — use the full Hessian's count in [hessian])")


@hookimpl
def flatland_run_extensions(register):
    from .extension import ReluRun
    register("relu", ReluRun, "relu net runs: [relu] step/hessian, rate maps, Hessian rows, phases, Fig 2 figures")


@hookimpl
def flatland_checks(register):
    from .checks import CHECKS
    for name, (factory, summary) in CHECKS.items():
        register(name, factory, summary)
