"""flatland.testing: the conformance kit and Hypothesis strategies for plugin authors.

``from flatland.testing import check_component`` runs every contract check for a
registered component; ``flatland.testing.strategies`` (needs Hypothesis) holds
strategies for keys, valleys and points on them. Installed flatland also adds
pytest fixtures (``flatland_assembly``, ``flatland_check``) via ``pytest11``.
"""
import functools

from .conformance import check_learner, check_loss, check_metric, check_noise, check_step, smoke_loss


_PROVIDERS: dict = {}


def loss_providing(registry, keys):
    """The first registered loss (by name) whose ``extras`` hold all ``keys``, or None.

    Built with its defaults once per registry and keys (task data can be large). A loss that
    cannot be built with its defaults (another plugin's bug) is passed over, not fatal here.
    """
    cache_key = (id(registry), tuple(keys))
    if cache_key not in _PROVIDERS:
        _PROVIDERS[cache_key] = None
        for entry in registry.entries("losses"):
            try:
                loss = entry.factory()
            except Exception:  # noqa: BLE001 - someone else's broken loss must not fail this component's test
                continue
            if all(k in (getattr(loss, "extras", None) or {}) for k in keys):
                _PROVIDERS[cache_key] = loss
                break
    return _PROVIDERS[cache_key]


def _loss_for(entry, component, registry):
    """None for a component that works on any loss, else a registered loss providing its extras
    (from ``registry``, or from the installed plugins when none is given)."""
    if not component.requires:
        return None
    if registry is None:
        registry = _installed_registry()
    loss = loss_providing(registry, component.requires)
    assert loss is not None, (f"{entry.kind} {entry.name} requires loss extras {', '.join(component.requires)} "
                              "and no registered loss that builds with its defaults provides them")
    return loss


@functools.lru_cache(maxsize=1)
def _installed_registry():
    """The installed plugins' registry, assembled once per process."""
    from ..assembly import assemble

    return assemble().registry


def check_component(entry, registry=None, **options) -> None:
    """Build a registry entry with ``options`` and run the checks for its kind.

    A noise model or metric that ``requires`` loss extras (a network task) is
    run on the first loss in ``registry`` that provides them. Checks (kind ``checks``) are
    only built and validated for shape here; running them is ``flatland check``.
    """
    from ..contracts import Check

    component = entry.factory(**options)
    if entry.kind == "losses":
        check_loss(component)
    elif entry.kind == "noise":
        check_noise(component, loss=_loss_for(entry, component, registry))
    elif entry.kind == "learners":
        check_learner(component)
    elif entry.kind == "metrics":
        check_metric(component, loss=_loss_for(entry, component, registry))
    elif entry.kind == "run_extensions":
        from ..extensions import check_run_extension

        check_run_extension(component)
    elif entry.kind == "checks":
        assert isinstance(component, Check), f"check factory {entry.name} returned {type(component).__name__}"
        assert callable(component.run) and component.suite, f"check {entry.name}: needs run() and a suite"
    else:  # pragma: no cover - registry rejects unknown kinds
        raise AssertionError(f"unknown kind {entry.kind}")


__all__ = ["check_component", "loss_providing", "check_learner", "check_loss", "check_metric", "check_noise", "check_step", "smoke_loss"]
