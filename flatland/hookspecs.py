"""The hook specifications: one per component kind.

Each hook is called once per plugin while assembling, with a ``register``
callback ``register(name, factory, summary)``. ``factory(**options)`` builds
the component (a :class:`~flatland.contracts.Loss`, ``NoiseModel``,
``Learner``, ``Metric`` or ``Check``). Hooks never return a component, and
``firstresult`` is never used to choose one: the registry decides, and rejects
duplicate names.
"""
import pluggy

PROJECT = "flatland"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: hook name -> component kind it registers
HOOK_KINDS = {
    "flatland_losses": "losses",
    "flatland_noise_models": "noise",
    "flatland_learners": "learners",
    "flatland_metrics": "metrics",
    "flatland_checks": "checks",
}


@hookspec
def flatland_losses(register):
    """Register losses and tasks: ``register(name, factory, summary)``; factory -> Loss."""


@hookspec
def flatland_noise_models(register):
    """Register noise models: ``register(name, factory, summary)``; factory -> NoiseModel."""


@hookspec
def flatland_learners(register):
    """Register learners: ``register(name, factory, summary)``; factory -> Learner."""


@hookspec
def flatland_metrics(register):
    """Register metrics: ``register(name, factory, summary)``; factory -> Metric."""


@hookspec
def flatland_checks(register):
    """Register checks: ``register(name, factory, summary)``; factory -> Check."""
