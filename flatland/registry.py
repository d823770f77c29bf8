"""The component registry: names -> factories, with their origins.

A registry is filled once per assembly (see :mod:`flatland.assembly`) and then
only read. It rejects a duplicate name within a kind with an error that names
both origins, so which component a name means never depends on load order.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

from .contracts import KINDS
from .errors import PluginError, UserError, unknown_name


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered component."""

    kind: str
    name: str
    factory: Callable[..., Any]
    summary: str
    origin: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "summary": self.summary, "origin": self.origin}


class DuplicateComponent(PluginError):
    """Two plugins registered the same name for the same kind."""


class Registry:
    """Components by kind and name."""

    def __init__(self):
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self.left_out: list[str] = []  # plugins assembly left out as broken, named in unknown-name errors

    def add(self, kind: str, name: str, factory: Callable, summary: str, origin: str) -> None:
        """Add a component; a second one with the same kind and name is an error."""
        if kind not in self._entries:
            raise PluginError(f"{origin}: unknown component kind {kind!r} (known: {', '.join(KINDS)})")
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise PluginError(f"{origin}: {kind} name must be a non-empty string without spaces, got {name!r}")
        if not callable(factory):
            raise PluginError(f"{origin}: factory for {kind} {name!r} is not callable")
        if not isinstance(summary, str) or not summary.strip() or "\n" in summary.strip():
            raise PluginError(f"{origin}: {kind} {name!r} needs a one-line summary")
        old = self._entries[kind].get(name)
        if old is not None:
            raise DuplicateComponent(
                f"duplicate {kind} name {name!r}: registered by {old.origin} and again by {origin} (plugins load "
                "in distribution-name order and the later one is left out: one of the two must rename it)"
            )
        self._entries[kind][name] = Entry(kind, name, factory, summary.strip(), origin)

    def entry(self, kind: str, name: str) -> Entry:
        """The entry for ``name``; an unknown name is a UserError listing the known ones."""
        try:
            return self._entries[kind][name]
        except KeyError:
            if kind not in self._entries:
                raise unknown_name("component kind", kind, KINDS) from None
            raise self.unknown(kind, name) from None

    def unknown(self, kind: str, name: str, what: str | None = None) -> UserError:
        """The error for an unknown ``name`` of ``kind``: the known names, the closest, and the plugins
        assembly left out as broken (the name may be theirs)."""
        err = unknown_name(what or _SINGULAR[kind], name, self._entries[kind])
        return UserError(f"{err}{self.left_out_note()}") if self.left_out else err

    def left_out_note(self) -> str:
        """``"; plugin(s) left out as broken: …"`` for messages about a missing name ("" when none was)."""
        if not self.left_out:
            return ""
        return f"; plugin(s) left out as broken: {', '.join(self.left_out)} (`flatland plugins` says why)"

    def create(self, kind: str, name: str, **options) -> Any:
        """Build the component ``name`` of ``kind`` with ``options``."""
        return self.entry(kind, name).factory(**options)

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str | None = None) -> Iterator[Entry]:
        kinds = KINDS if kind is None else (kind,)
        for k in kinds:
            for name in sorted(self._entries[k]):
                yield self._entries[k][name]

    def __contains__(self, kind_name: tuple[str, str]) -> bool:
        kind, name = kind_name
        return name in self._entries.get(kind, {})


_SINGULAR = {
    "losses": "loss",
    "noise": "noise model",
    "learners": "learner",
    "metrics": "metric",
    "checks": "check",
    "run_extensions": "run extension",
}
