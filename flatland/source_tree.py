"""Importing flatland straight from a source checkout that is not installed as editable.

The checkout keeps the symbolic side in its top-level ``theory/`` folder, which an install maps to
``flatland.theory`` (pyproject's ``package-dir``; an editable install maps it with its own finder).
Python run in the checkout's root (``python -m flatland`` beside a regular ``pip install .``) imports
the checkout's ``flatland/`` first, and then nothing maps ``theory/``: the import failed with
"No module named 'flatland.theory'". :func:`map_sibling_package` makes that mapping, so a checkout
behaves as the installed package does.
"""
import importlib.util
import sys
from pathlib import Path


def map_sibling_package(package: str, package_dir: Path, sub: str, folder: str) -> None:
    """Make ``package.sub`` the folder ``folder`` beside ``package_dir`` when nothing else provides it.

    Does nothing when the module is loaded already, when the package holds ``sub`` itself (an
    installed copy) or some import finder provides it (an editable install), or when there is no
    such folder.
    """
    name = f"{package}.{sub}"
    source = Path(package_dir).resolve().parent / folder
    if name in sys.modules or (Path(package_dir) / sub).exists() or not (source / "__init__.py").is_file():
        return
    if importlib.util.find_spec(name) is not None:
        return
    spec = importlib.util.spec_from_file_location(name, source / "__init__.py",
                                                  submodule_search_locations=[str(source)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    setattr(sys.modules[package], sub, module)
