"""A checkout imported without an editable install maps its top-level theory/ and plugins/ folders."""
import sys

import pytest

from flatland.source_tree import map_checkout


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A fake checkout: fakepkg/ (the package, without sub/) beside fakesub/ (an install's fakepkg.sub) and
    fakeplugs/ (an install's top-level fakeplugs_mod)."""
    for folder, init in (("fakepkg", ""), ("fakesub", "from .inner import VALUE\n"), ("fakeplugs", "NAME = 'p'\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text(init)
    (tmp_path / "fakesub" / "inner.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.split(".")[0] in ("fakepkg", "fakeplugs_mod")]:
        del sys.modules[name]


FOLDERS = {"fakepkg.sub": "fakesub", "fakeplugs_mod": "fakeplugs"}


def test_the_checkout_folders_become_the_installed_names_with_their_submodules(checkout):
    import fakepkg

    with pytest.raises(ModuleNotFoundError):
        import fakepkg.sub  # noqa: F401  — what `python -m flatland` met in a checkout's root
    assert map_checkout(checkout / "fakepkg", FOLDERS)
    import fakepkg.sub
    import fakepkg.sub.inner
    import fakeplugs_mod

    assert fakepkg.sub.VALUE == 42 and fakepkg.sub.inner.__file__ == str(checkout / "fakesub" / "inner.py")
    assert fakeplugs_mod.NAME == "p" and fakeplugs_mod.__file__ == str(checkout / "fakeplugs" / "__init__.py")


def test_an_installed_copy_or_a_missing_folder_is_left_alone(checkout):
    (checkout / "fakepkg" / "sub").mkdir()            # the installed layout: the package holds sub/ itself
    assert not map_checkout(checkout / "fakepkg", FOLDERS)
    assert "fakepkg.sub" not in sys.modules and "fakeplugs_mod" not in sys.modules
    assert not map_checkout(checkout / "fakepkg", {"fakepkg.other": "no-such-folder"})
