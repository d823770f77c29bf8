"""Registry: duplicate names name both origins; unknown names suggest the closest."""
import pytest

from flatland.errors import UserError
from flatland.registry import DuplicateComponent, Registry


def test_duplicate_name_names_both_origins():
    reg = Registry()
    reg.add("learners", "gd", lambda: None, "one", "pkg-a 1.0")
    with pytest.raises(DuplicateComponent) as err:
        reg.add("learners", "gd", lambda: None, "two", "pkg-b 2.0")
    assert "pkg-a 1.0" in str(err.value) and "pkg-b 2.0" in str(err.value)


def test_same_name_in_different_kinds_is_allowed():
    reg = Registry()
    reg.add("learners", "x", lambda: 1, "a learner", "o")
    reg.add("losses", "x", lambda: 2, "a loss", "o")
    assert reg.create("learners", "x") == 1 and reg.create("losses", "x") == 2


def test_unknown_name_lists_known_and_closest():
    reg = Registry()
    reg.add("noise", "update", lambda: None, "update noise", "o")
    reg.add("noise", "label", lambda: None, "label noise", "o")
    with pytest.raises(UserError) as err:
        reg.entry("noise", "updte")
    msg = str(err.value)
    assert "'update'" in msg and "did you mean" in msg and "label" in msg and "\n" not in msg


@pytest.mark.parametrize("name,summary,why", [
    ("", "s", "non-empty"), ("two words", "s", "without spaces"), ("ok", "", "one-line summary"),
    ("ok", "line one\nline two", "one-line summary"),
])
def test_bad_registrations_are_rejected(name, summary, why):
    from flatland.errors import PluginError

    with pytest.raises(PluginError, match=why):
        Registry().add("losses", name, lambda: None, summary, "origin")


def test_unknown_kind_is_rejected():
    from flatland.errors import PluginError

    with pytest.raises(PluginError, match="unknown component kind"):
        Registry().add("optimizers", "x", lambda: None, "s", "o")
