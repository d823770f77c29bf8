"""Assembly: builtins, entry points, broken plugins isolated, strict mode, misspelled hooks."""
import types

import pytest

import flatland
from flatland import hookimpl
from flatland.errors import PluginError


class FakeDist:
    version = "9.9"

    def __init__(self, name):
        self.metadata = {"Name": name}


class FakeEntryPoint:
    """Stands in for importlib.metadata.EntryPoint (name, value, dist, load)."""

    def __init__(self, name, loader, dist="fake-dist"):
        self.name, self.value, self._loader, self.dist = name, f"{name}_module", loader, FakeDist(dist)

    def load(self):
        return self._loader()


def _plugin(**hooks):
    return types.SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()})


def _good():
    def flatland_losses(register):
        register("good-loss", lambda: None, "a good loss")
    return _plugin(flatland_losses=flatland_losses)


def _raise_import():
    raise ImportError("no module named 'nonexistent'")


def test_builtins_register_and_report_origin():
    asm = flatland.assemble(entry_points=[])
    assert not asm.broken
    names = {p.name for p in asm.plugins}
    assert "flatland.valleys" in names
    entry = asm.registry.entry("losses", "fig5a")
    assert entry.origin.startswith("flatland (builtin flatland_plugins.valleys")


def test_entry_point_plugin_is_registered_with_its_distribution():
    asm = flatland.assemble(entry_points=[FakeEntryPoint("good", _good, dist="good-dist")])
    entry = asm.registry.entry("losses", "good-loss")
    assert "good-dist 9.9" in entry.origin
    info = [p for p in asm.plugins if p.name == "good"][0]
    assert info.version == "9.9" and info.hooks == ("flatland_losses",)


def test_broken_entry_point_is_reported_and_the_rest_keeps_working():
    eps = [FakeEntryPoint("broken", _raise_import, dist="broken-dist"), FakeEntryPoint("good", _good)]
    asm = flatland.assemble(entry_points=eps, strict=False)
    assert [(b.name, b.distribution) for b in asm.broken] == [("broken", "broken-dist")]
    assert "nonexistent" in asm.broken[0].error
    assert ("losses", "good-loss") in asm.registry and ("losses", "fig5a") in asm.registry


def test_strict_mode_makes_a_broken_plugin_fatal(monkeypatch):
    monkeypatch.setenv("FLATLAND_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="broken-dist"):
        flatland.assemble(entry_points=[FakeEntryPoint("broken", _raise_import, dist="broken-dist")])


def test_registration_that_raises_is_isolated():
    def flatland_learners(register):
        register("half-done", lambda: None, "registered before the crash")
        raise RuntimeError("boom")

    asm = flatland.assemble(entry_points=[], extra=[("crashy", _plugin(flatland_learners=flatland_learners))])
    assert [b.name for b in asm.broken] == ["crashy"] and "boom" in asm.broken[0].error
    assert ("learners", "half-done") not in asm.registry


def test_duplicate_across_plugins_leaves_the_second_out_whole():
    def flatland_losses(register):
        register("other", lambda: None, "fine on its own")
        register("fig5a", lambda: None, "clashes with a builtin")

    asm = flatland.assemble(entry_points=[], extra=[("clash", _plugin(flatland_losses=flatland_losses))])
    assert "duplicate losses name 'fig5a'" in asm.broken[0].error
    assert "flatland (builtin flatland_plugins.valleys)" in asm.broken[0].error
    assert ("losses", "other") not in asm.registry


def test_two_third_party_plugins_with_one_name_load_in_a_fixed_order():
    """Which of two outside plugins kept a shared name depended on the environment's entry-point order;
    they load in distribution-name order now, and the message says what to do."""
    def owning(tag):
        def flatland_learners(register):
            register("shared", lambda: None, f"from {tag}")
        return lambda: _plugin(flatland_learners=flatland_learners)

    for eps in ([FakeEntryPoint("b", owning("b"), dist="b-plugin"), FakeEntryPoint("a", owning("a"), dist="a-plugin")],
                [FakeEntryPoint("a", owning("a"), dist="a-plugin"), FakeEntryPoint("b", owning("b"), dist="b-plugin")]):
        asm = flatland.assemble(entry_points=eps)
        assert asm.registry.entry("learners", "shared").summary == "from a"
        assert [b.distribution for b in asm.broken] == ["b-plugin"] and "must rename it" in asm.broken[0].error


def test_misspelled_marked_hook_is_detected():
    def flatland_lossess(register):
        pass

    asm = flatland.assemble(entry_points=[], extra=[("typo", _plugin(flatland_lossess=flatland_lossess))])
    assert asm.broken and "flatland_lossess" in asm.broken[0].error


def test_misspelled_unmarked_hook_is_detected_with_suggestion():
    def flatland_learner(register):
        pass

    plugin = types.SimpleNamespace(flatland_learner=flatland_learner)
    asm = flatland.assemble(entry_points=[], extra=[("typo2", plugin)])
    assert "did you mean flatland_learners" in asm.broken[0].error


def test_each_assembly_is_fresh():
    a = flatland.assemble(entry_points=[], extra=[("good", _good())])
    b = flatland.assemble(entry_points=[])
    assert ("losses", "good-loss") in a.registry and ("losses", "good-loss") not in b.registry
    assert a.manager is not b.manager


def test_broken_builtin_module_is_reported():
    asm = flatland.assemble(builtins=["flatland_plugins.valleys", "flatland_plugins.does_not_exist"], entry_points=[])
    assert asm.broken[0].name == "does_not_exist" and asm.broken[0].distribution == "flatland"
    assert ("losses", "fig5a") in asm.registry


def _exits():
    raise SystemExit(3)


def _interrupts():
    raise KeyboardInterrupt


def _check_factory_raises():
    def flatland_checks(register):
        register("boom-check", lambda: 1 / 0, "a check whose factory raises")
    return _plugin(flatland_checks=flatland_checks)


def _check_factory_garbage():
    def flatland_checks(register):
        register("garbage-check", lambda: 42, "a check whose factory returns an int")
    return _plugin(flatland_checks=flatland_checks)


def _not_callable():
    def flatland_learners(register):
        register("not-callable", None, "a learner without a factory")
    return _plugin(flatland_learners=flatland_learners)


@pytest.mark.parametrize("loader, message", [
    (_exits, "SystemExit"),
    (_interrupts, "KeyboardInterrupt"),
    (_check_factory_raises, "its factory raised ZeroDivisionError"),
    (_check_factory_garbage, "returned int, not a flatland.Check"),
    (_not_callable, "not callable"),
    (lambda: 42, "implements no flatland hook"),
])
def test_a_broken_plugin_is_left_out_and_named_without_taking_flatland_down(loader, message):
    asm = flatland.assemble(entry_points=[FakeEntryPoint("bad", loader)])
    assert [b.name for b in asm.broken] == ["bad"] and message in asm.broken[0].error
    assert ("checks", "boom-check") not in asm.registry and ("checks", "garbage-check") not in asm.registry
    assert ("losses", "fig5a") in asm.registry                      # the built-ins are all there
    with pytest.raises(PluginError, match="bad"):
        flatland.assemble(entry_points=[FakeEntryPoint("bad", loader)], strict=True)


def test_an_unknown_name_mentions_the_plugins_left_out():
    from flatland.errors import UserError

    asm = flatland.assemble(entry_points=[FakeEntryPoint("bad", _exits)])
    with pytest.raises(UserError, match=r"left out as broken: bad \(`flatland plugins` says why\)"):
        asm.registry.entry("learners", "my-learner")


def test_a_wrong_hook_signature_is_one_line():
    def flatland_losses(register, extra):  # pluggy refuses an argument the hookspec does not have
        pass
    asm = flatland.assemble(entry_points=[FakeEntryPoint("sig", lambda: _plugin(flatland_losses=flatland_losses))])
    assert [b.name for b in asm.broken] == ["sig"] and "\n" not in asm.broken[0].error


def test_a_hook_that_returns_components_instead_of_registering_them_is_broken():
    """`return [...]` in a hook registered nothing, silently."""
    def flatland_losses(register):
        return ["x"]

    asm = flatland.assemble(entry_points=[], extra=[("returns", _plugin(flatland_losses=flatland_losses))])
    assert "flatland_losses returned list" in asm.broken[0].error and "calling register" in asm.broken[0].error


def test_an_entry_point_in_a_look_alike_group_is_named_instead_of_silently_ignored(monkeypatch):
    """A README-only plugin author published under [project.entry-points."flatland.plugins"]: the plugin never
    loaded and the only symptom was "unknown loss". It is now a broken plugin that names the group to use."""
    import importlib.metadata as md

    ep = md.EntryPoint(name="wg", value="wg_plugin:plugin", group="flatland.plugins")
    other = md.EntryPoint(name="x", value="x:y", group="console_scripts")
    dist = types.SimpleNamespace(entry_points=[ep, other], metadata={"Name": "wrong-group-dist"})
    import flatland.assembly as assembly

    real = assembly._installed_distributions
    monkeypatch.setattr(assembly, "_installed_distributions", lambda: list(real()) + [dist])
    asm = flatland.assemble(strict=False)
    (b,) = [b for b in asm.broken if b.name == "wg"]
    assert b.distribution == "wrong-group-dist" and "'flatland.plugins'" in b.error
    assert "[project.entry-points.flatland]" in b.error
    assert not [b for b in asm.broken if b.name == "x"]
    with pytest.raises(flatland.UserError, match="left out as broken: wg"):
        asm.registry.create("losses", "wg-loss")
