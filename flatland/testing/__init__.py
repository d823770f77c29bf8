"""flatland.testing: the conformance kit and Hypothesis strategies for plugin authors.

``from flatland.testing import check_component`` runs every contract check for a
registered component; ``flatland.testing.strategies`` (needs Hypothesis) holds
strategies for keys, valleys and points on them. Installed flatland also adds
pytest fixtures (``flatland_assembly``, ``flatland_check``) via ``pytest11``.
"""
from .conformance import check_learner, check_loss, check_metric, check_noise, check_step, smoke_loss


def loss_providing(registry, keys):
    """The first registered loss (by name) whose ``extras`` hold all ``keys``, or None."""
    for entry in registry.entries("losses"):
        loss = entry.factory()
        if all(k in loss.extras for k in keys):
            return loss
    return None


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
        loss = None
        if component.requires:
            loss = loss_providing(registry, component.requires) if registry is not None else None
            assert loss is not None, (f"noise {entry.name} requires loss extras {', '.join(component.requires)} "
                                      "and no registered loss provides them")
        check_noise(component, loss=loss)
    elif entry.kind == "learners":
        check_learner(component)
    elif entry.kind == "metrics":
        loss = None
        if component.requires:
            loss = loss_providing(registry, component.requires) if registry is not None else None
            assert loss is not None, (f"metric {entry.name} requires loss extras {', '.join(component.requires)} "
                                      "and no registered loss provides them")
        check_metric(component, loss=loss)
    elif entry.kind == "checks":
        assert isinstance(component, Check), f"check factory {entry.name} returned {type(component).__name__}"
        assert callable(component.run) and component.suite, f"check {entry.name}: needs run() and a suite"
    else:  # pragma: no cover - registry rejects unknown kinds
        raise AssertionError(f"unknown kind {entry.kind}")


__all__ = ["check_component", "loss_providing", "check_learner", "check_loss", "check_metric", "check_noise", "check_step", "smoke_loss"]
