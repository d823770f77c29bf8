"""Imports run one way: CLI → engine → theory; plugins use only the public API.

An AST scan of every module (imports inside functions included) enforces:

* the engine (``flatland/`` but ``flatland/cli``) and the kit (``flatland/testing``)
  never import ``flatland_plugins``, and the engine never imports the CLI;
* the theory (``theory/`` = ``flatland.theory``) imports nothing of flatland but ``flatland.errors``;
* plugins (``plugins/`` and the example plugin package) never import the CLI, and
  import from flatland only public modules (``flatland``, ``flatland.theory``,
  ``flatland.testing``, ``flatland.geometry``, ``flatland.errors``) and only the names
  in their ``__all__``.
"""
import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = ("flatland", "flatland.theory", "flatland.testing", "flatland.geometry", "flatland.errors")


def _part(rel: str):
    if rel.startswith("flatland/cli"):
        return "cli"
    if rel.startswith("flatland/testing"):
        return "kit"
    if rel.startswith("flatland/"):
        return "engine"
    if rel.startswith("theory/"):
        return "theory"
    if rel.startswith("plugins/") or rel.startswith("examples/flatland-example-plugin/"):
        return "plugins"
    return None


def _module_of(rel: str) -> list[str]:
    parts = rel[:-3].split("/")
    if parts[0] == "theory":
        parts = ["flatland", "theory"] + parts[1:]
    elif parts[0] == "plugins":
        parts = ["flatland_plugins"] + parts[1:]
    return parts


def _imports(path: Path, rel: str):
    """(line, module, names) for every import in the file; relative imports resolved."""
    tree = ast.parse(path.read_text())
    parts = _module_of(rel)
    is_pkg = parts[-1] == "__init__"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[:-1] if not is_pkg else parts[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield node.lineno, mod, tuple(a.name for a in node.names)


def _files():
    for sub in ("flatland", "theory", "plugins", "examples/flatland-example-plugin"):
        for path in sorted((ROOT / sub).rglob("*.py")):
            if "egg-info" in str(path) or "/build/" in str(path):
                continue
            rel = path.relative_to(ROOT).as_posix()
            if _part(rel) is not None and rel != "flatland/__main__.py":
                yield path, rel


def _public_names(module: str) -> set:
    mod = importlib.import_module(module)
    return set(getattr(mod, "__all__", ()))


def violations():
    bad = []
    for path, rel in _files():
        src = _part(rel)
        for line, mod, names in _imports(path, rel):
            where = f"{rel}:{line} imports {mod}"
            in_flatland = mod == "flatland" or mod.startswith("flatland.")
            if src in ("engine", "kit") and mod.split(".")[0] == "flatland_plugins":
                bad.append(f"{where}: the engine never imports the built-in plugins")
            if src == "engine" and mod.startswith("flatland.cli"):
                bad.append(f"{where}: the engine never imports the command line")
            if src == "theory" and in_flatland and not (mod.startswith("flatland.theory") or mod == "flatland.errors"):
                bad.append(f"{where}: the theory imports nothing of flatland but flatland.errors")
            if src == "plugins" and in_flatland:
                if mod.startswith("flatland.cli"):
                    bad.append(f"{where}: plugins never import the command line")
                elif mod not in PUBLIC_MODULES:
                    bad.append(f"{where}: plugins import only {', '.join(PUBLIC_MODULES)}")
                else:
                    hidden = [n for n in names if n not in _public_names(mod)]
                    if hidden:
                        bad.append(f"{where}: {', '.join(hidden)} not in {mod}.__all__")
    return bad


def test_no_forbidden_import_arrows():
    bad = violations()
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def test_the_scan_sees_imports_inside_functions(tmp_path):
    """The scanner is not blind: a lazy import of a plugin from the engine is caught."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from flatland_plugins.relu import network\n    from . import x\n")
    found = list(_imports(f, "flatland/m.py"))
    assert (2, "flatland_plugins.relu", ("network",)) in found and (3, "flatland", ("x",)) in found


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_public_modules_declare_all(module):
    assert _public_names(module), f"{module} has no __all__"
