"""A checkout imported without an editable install maps its top-level theory/ folder to flatland.theory."""
import sys

import pytest

from flatland.source_tree import map_sibling_package


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A fake checkout: pkg/ (the package, without sub/) beside sub/ (the folder an install maps to pkg.sub)."""
    (tmp_path / "fakepkg").mkdir()
    (tmp_path / "fakepkg" / "__init__.py").write_text("")
    (tmp_path / "fakesub").mkdir()
    (tmp_path / "fakesub" / "__init__.py").write_text("from .inner import VALUE\n")
    (tmp_path / "fakesub" / "inner.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "fakepkg" or m.startswith("fakepkg.")]:
        del sys.modules[name]


def test_the_sibling_folder_becomes_the_subpackage_with_its_own_submodules(checkout):
    import fakepkg

    with pytest.raises(ModuleNotFoundError):
        import fakepkg.sub  # noqa: F401  — what `python -m flatland` met in a checkout's root
    map_sibling_package("fakepkg", checkout / "fakepkg", "sub", "fakesub")
    import fakepkg.sub
    import fakepkg.sub.inner

    assert fakepkg.sub.VALUE == 42 and fakepkg.sub.inner.__file__ == str(checkout / "fakesub" / "inner.py")


def test_an_installed_copy_or_a_missing_folder_is_left_alone(checkout):
    import fakepkg

    (checkout / "fakepkg" / "sub").mkdir()            # the installed layout: the package holds sub/ itself
    map_sibling_package("fakepkg", checkout / "fakepkg", "sub", "fakesub")
    assert "fakepkg.sub" not in sys.modules
    map_sibling_package("fakepkg", checkout / "fakepkg", "other", "no-such-folder")
    assert "fakepkg.other" not in sys.modules and not hasattr(fakepkg, "other")

