"""The hook specifications: one per component kind.

Each hook is called once per plugin while assembling, with a ``register``
callback ``register(name, factory, summary)``. ``factory(**options)`` builds
the component (a :class:`~flatland.contracts.Loss`, ``NoiseModel``,
``Learner``, ``Metric``, ``Check`` or
:class:`~flatland.extensions.RunExtension`). Hooks never return a component, and
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
    "flatland_run_extensions": "run_extensions",
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


@hookspec
def flatland_run_extensions(register):
    """Register run extensions: ``register(name, factory, summary)``; factory -> RunExtension.

    ``flatland run`` asks every registered extension whether it ``applies`` to the
    run's loss; those that do add their config section, step, snapshots, report
    and figures (see :mod:`flatland.extensions`).
    """
