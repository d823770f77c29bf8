"""flatland.testing: the conformance kit and Hypothesis strategies for plugin authors.

``from flatland.testing import check_component`` runs every contract check for a
registered component; ``flatland.testing.strategies`` (needs Hypothesis) holds
strategies for keys, valleys and points on them. Installed flatland also adds
pytest fixtures (``flatland_assembly``, ``flatland_check``) via ``pytest11``.
"""
from .conformance import check_learner, check_loss, check_metric, check_noise, check_step, smoke_loss


def check_component(entry, **options) -> None:
    """Build a registry entry with ``options`` and run the checks for its kind.

    Checks (kind ``checks``) are only built and validated for shape here; running
    them is what ``flatland check`` does.
    """
    from ..contracts import Check

    component = entry.factory(**options)
    if entry.kind == "losses":
        check_loss(component)
    elif entry.kind == "noise":
        check_noise(component)
    elif entry.kind == "learners":
        check_learner(component)
    elif entry.kind == "metrics":
        check_metric(component)
    elif entry.kind == "checks":
        assert isinstance(component, Check), f"check factory {entry.name} returned {type(component).__name__}"
        assert callable(component.run) and component.suite, f"check {entry.name}: needs run() and a suite"
    else:  # pragma: no cover - registry rejects unknown kinds
        raise AssertionError(f"unknown kind {entry.kind}")


__all__ = ["check_component", "check_learner", "check_loss", "check_metric", "check_noise", "check_step", "smoke_loss"]
