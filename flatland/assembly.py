"""Assembling the plugins: a fresh pluggy manager and registry per call.

``assemble()`` builds a new :class:`pluggy.PluginManager`, registers the
built-in plugin modules named (as strings, never imported by the engine's code)
in ``BUILTIN``,
loads third-party plugins from the entry-point group ``flatland``, and calls
each plugin's hooks with a ``register`` callback bound to that plugin's origin.
A plugin that fails to import, validate or register is recorded in
``Assembly.broken`` (distribution, error) and left out; everything else keeps
working. With ``FLATLAND_STRICT_PLUGINS=1`` (or ``strict=True``) any such
failure is raised instead. Nothing here is a module-level global: two
assemblies never share state.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata as md
import os
import types
from typing import Callable, Iterable

import pluggy

from . import hookspecs
from .errors import PluginError, UserError
from .registry import _SINGULAR as SINGULAR, Registry

ENTRY_POINT_GROUP = "flatland"

#: The built-in plugin modules, in registration order. They are named, not imported: the engine
#: loads them exactly as it loads a third party's entry point, so a plugin gets what a built-in gets.
BUILTIN = (
    "flatland_plugins.valleys",
    "flatland_plugins.noise",
    "flatland_plugins.learners",
    "flatland_plugins.metrics",
    "flatland_plugins.valley_checks",
    "flatland_plugins.valley_checks_more",
    "flatland_plugins.relu",
    "flatland_plugins.geometry_task",
    "flatland_plugins.geometry_noise",
    "flatland_plugins.geometry_metrics",
    "flatland_plugins.geometry_checks",
    "flatland_plugins.geometry_penalty",
    "flatland_plugins.hebbian",
)


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its name, version, origin and the hooks it implements."""

    name: str
    version: str
    origin: str
    hooks: tuple[str, ...]

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"hooks": list(self.hooks)}


@dataclasses.dataclass(frozen=True)
class BrokenPlugin:
    """A plugin left out: where it came from and why."""

    name: str
    distribution: str
    error: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Assembly:
    """The result of one assembly: registry, plugins, failures and the manager."""

    registry: Registry
    plugins: list[PluginInfo]
    broken: list[BrokenPlugin]
    manager: pluggy.PluginManager


def strict_from_env() -> bool:
    return os.environ.get("FLATLAND_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


def _flatland_version() -> str:
    try:
        return md.version("flatland")
    except md.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def misspelled_hooks(plugin: object) -> list[str]:
    """Public attributes named like hooks (``flatland_*``) that match no hookspec."""
    known = set(hookspecs.HOOK_KINDS)
    bad = []
    for attr in dir(plugin):
        if attr.startswith("flatland_") and attr not in known and callable(getattr(plugin, attr, None)):
            close = difflib.get_close_matches(attr, known, n=1)
            bad.append(f"{attr}" + (f" (did you mean {close[0]}?)" if close else ""))
    return bad


#: what a plugin may raise at import or registration without taking flatland down with it
CONTAINED = (Exception, SystemExit, KeyboardInterrupt)
#: kinds whose factories are built at assembly to check what they return (cheap, argument-free objects)
BUILT_AT_ASSEMBLY = ("checks", "run_extensions")


def _factory_problem(staged) -> str:
    """Why a plugin's registered factories are unusable ("" when they are fine)."""
    for kind, comp_name, factory, _ in staged:
        if not callable(factory):
            return f"{kind} {comp_name!r}: the factory is a {type(factory).__name__}, not callable"
        if kind in BUILT_AT_ASSEMBLY:
            try:
                made = factory()
            except CONTAINED as exc:
                return f"{kind} {comp_name!r}: its factory raised {type(exc).__name__}: {exc}"
            if not isinstance(made, _contract(kind)):
                return (f"{kind} {comp_name!r}: its factory returned {type(made).__name__}, "
                        f"not a flatland.{_contract(kind).__name__}")
    return ""


def _checked(kind: str, name: str, factory: Callable, origin: str) -> Callable:
    """``factory``, checked each time it builds a component: what it returns must be the kind's contract
    type (a flatland.Learner for a learner, …), and an exception other than a rejected option
    (UserError, TypeError, ValueError: the caller names the option) or a file problem (OSError) is the
    plugin's. Either is a one-line
    PluginError naming the component and its origin, never an internal error of flatland's.
    Options differ from use to use, so this cannot all happen at assembly itself."""
    import functools

    @functools.wraps(factory, updated=())
    def make(*args, **options):
        try:
            made = factory(*args, **options)
        except (UserError, PluginError, TypeError, ValueError, OSError):  # a bad option, a missing file
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's bug, named as such
            raise PluginError(f"{SINGULAR[kind]} {name!r} from {origin}: its factory raised "
                              f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc
        expected = _contract(kind)
        if not isinstance(made, expected):
            raise PluginError(f"{SINGULAR[kind]} {name!r} from {origin}: its factory returned "
                              f"{type(made).__name__}, not a flatland.{expected.__name__}")
        return made
    return make


def _contract(kind: str) -> type:
    from . import contracts
    from .extensions import RunExtension

    return {"losses": contracts.Loss, "noise": contracts.NoiseModel, "learners": contracts.Learner,
            "metrics": contracts.Metric, "checks": contracts.Check, "run_extensions": RunExtension}[kind]


class _Assembler:
    def __init__(self, strict: bool):
        self.strict = strict
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: list[PluginInfo] = []
        self.broken: list[BrokenPlugin] = []

    def fail(self, name: str, distribution: str, error: str) -> None:
        error = " ".join(str(error).split())  # one line, whatever the exception's message looked like
        if self.strict:
            raise PluginError(f"plugin {name!r} from {distribution}: {error}")
        self.broken.append(BrokenPlugin(name, distribution, error))

    def add(self, plugin: object, name: str, version: str, origin: str, distribution: str) -> None:
        """Validate ``plugin``, then call its hooks with an origin-bound ``register``."""
        bad = misspelled_hooks(plugin)
        if bad:
            self.fail(name, distribution, "unknown hook implementation(s): " + ", ".join(bad))
            return
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except Exception as exc:  # pluggy.PluginValidationError, ValueError for a repeated name
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self.fail(name, distribution, f"{type(exc).__name__}: {exc}")
            return
        staged: list[tuple] = []
        hooks = []
        for hook_name, kind in hookspecs.HOOK_KINDS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                hooks.append(hook_name)

                def register(comp_name, factory, summary, _kind=kind):
                    staged.append((_kind, comp_name, factory, summary))

                try:
                    returned = impl.function(register=register)
                except CONTAINED as exc:
                    self.pm.unregister(plugin)
                    self.fail(name, distribution, f"{hook_name} raised {type(exc).__name__}: {exc}")
                    return
                if returned is not None:   # components returned, not registered: they would vanish silently
                    self.pm.unregister(plugin)
                    self.fail(name, distribution, f"{hook_name} returned {type(returned).__name__} {returned!r:.40}; "
                                                  "a hook adds components by calling register(name, factory, "
                                                  "summary) and returns nothing")
                    return
        if not hooks:
            self.pm.unregister(plugin)
            self.fail(name, distribution, f"{type(plugin).__name__} {plugin!r:.40} implements no flatland hook "
                                          f"(known: {', '.join(hookspecs.HOOK_KINDS)})")
            return
        problem = _factory_problem(staged)
        if problem:
            self.pm.unregister(plugin)
            self.fail(name, distribution, problem)
            return
        # All-or-nothing: a plugin whose components clash is left out whole.
        snapshot = {k: dict(v) for k, v in self.registry._entries.items()}
        try:
            for kind, comp_name, factory, summary in staged:
                self.registry.add(kind, comp_name, _checked(kind, comp_name, factory, origin), summary, origin)
        except PluginError as exc:
            self.registry._entries = snapshot
            self.pm.unregister(plugin)
            self.fail(name, distribution, str(exc))
            return
        self.plugins.append(PluginInfo(name, version, origin, tuple(sorted(set(hooks)))))


def _load_builtins(asm: _Assembler, modules: Iterable[str]) -> None:
    version = _flatland_version()
    for modname in modules:
        short = modname.rsplit(".", 1)[-1]
        try:
            module = importlib.import_module(modname)
        except CONTAINED as exc:
            asm.fail(short, "flatland", f"import of {modname} failed: {type(exc).__name__}: {exc}")
            continue
        asm.add(module, f"flatland.{short}", version, f"flatland (builtin {modname})", "flatland")


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "unknown distribution"


def _load_entry_points(asm: _Assembler, entry_points) -> None:
    # in distribution-name order: of two third-party plugins that register one name, the same one is
    # loaded and the same one left out on every machine (the environment's order is not defined)
    for ep in sorted(entry_points, key=lambda e: (_dist_name(e).lower(), e.name)):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "unknown distribution"
        dist_version = dist.version if dist is not None else "?"
        try:
            plugin = ep.load()
        except CONTAINED as exc:
            asm.fail(ep.name, dist_name, f"entry point {ep.value} failed to load: {type(exc).__name__}: {exc}")
            continue
        asm.add(plugin, ep.name, dist_version, f"{dist_name} {dist_version} (entry point {ep.name})", dist_name)


def _installed_distributions():
    return md.distributions()


def _misgrouped(asm: _Assembler) -> None:
    """Entry points published under a group that looks like flatland's but is not ``flatland``
    ("flatland.plugins", "flatland_plugins"): they are never loaded, and the only symptom was "unknown loss".
    Each is reported as a broken plugin that names the group to use."""
    for dist in _installed_distributions():
        try:
            eps = list(dist.entry_points)
        except Exception:  # noqa: BLE001 - unreadable metadata of someone else's package: not ours to judge
            continue
        for ep in eps:
            group = str(ep.group)
            if group != ENTRY_POINT_GROUP and group.lower().replace("_", ".").replace("-", ".").split(".")[0] == "flatland":
                asm.fail(ep.name, dist.metadata["Name"] or "unknown distribution",
                         f"published in entry-point group {group!r}, which flatland does not read: use "
                         f"[project.entry-points.{ENTRY_POINT_GROUP}] (not loaded)")


def assemble(
    strict: bool | None = None,
    builtins: Iterable[str] | None = None,
    entry_points=None,
    extra: Iterable[tuple[str, object]] = (),
) -> Assembly:
    """Build a fresh plugin manager and registry.

    ``builtins`` defaults to ``BUILTIN``; ``entry_points``
    defaults to the installed entry points of group ``flatland``; ``extra``
    registers ``(name, module_or_object)`` pairs directly (for tests and for
    plugin authors trying a plugin before packaging it).
    """
    asm = _Assembler(strict_from_env() if strict is None else strict)
    _load_builtins(asm, BUILTIN if builtins is None else builtins)
    if entry_points is None:
        entry_points = md.entry_points(group=ENTRY_POINT_GROUP)
        _misgrouped(asm)
    _load_entry_points(asm, entry_points)
    for name, obj in extra:
        if isinstance(obj, types.ModuleType):
            origin = f"{name} (module {obj.__name__})"
        else:
            origin = f"{name} (registered directly)"
        asm.add(obj, name, "0+local", origin, name)
    asm.registry.left_out = [b.name for b in asm.broken]
    return Assembly(asm.registry, asm.plugins, asm.broken, asm.pm)
