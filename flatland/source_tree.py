"""Importing flatland straight from a source checkout that is not installed as editable.

The checkout keeps the symbolic side in its top-level ``theory/`` folder and the built-in components
in ``plugins/``, which an install maps to ``flatland.theory`` and ``flatland_plugins`` (pyproject's
``package-dir``; an editable install maps them with its own finder). Python run in the checkout's
root (``python -m flatland`` beside a regular ``pip install .``, or with no install) imports the
checkout's ``flatland/`` first, and then nothing maps those folders: the import failed with "No
module named 'flatland.theory'", and the built-in components would have come from an installed copy
or from nowhere. :func:`map_checkout` maps them to the checkout's own folders.
"""
import importlib.util
import sys
from pathlib import Path


def map_checkout(package_dir: Path, folders: dict) -> bool:
    """Load each module of ``folders`` ({module name: folder beside ``package_dir``}) from the checkout.

    Only for a checkout that nothing maps: the first entry (a subpackage of the package) is neither a
    folder inside ``package_dir`` (an installed copy) nor found by an import finder (an editable
    install), and its folder is there. Modules already loaded are left alone. Returns whether it mapped.
    """
    package_dir = Path(package_dir)
    root = package_dir.resolve().parent
    probe, probe_folder = next(iter(folders.items()))
    if (probe in sys.modules or (package_dir / probe.rsplit(".", 1)[-1]).exists()
            or not (root / probe_folder / "__init__.py").is_file() or importlib.util.find_spec(probe) is not None):
        return False
    for name, folder in folders.items():
        if name not in sys.modules and (root / folder / "__init__.py").is_file():
            _load(name, root / folder)
    return True


def _load(name: str, source: Path) -> None:
    """Import the package in folder ``source`` as module ``name`` (and set it on its parent package)."""
    spec = importlib.util.spec_from_file_location(name, source / "__init__.py", submodule_search_locations=[str(source)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
