"""Every hookspec has a test: a plugin implementing just that hook registers a component.

``HOOK_TESTS`` maps each hook to the component it registers; the meta-test
fails when a hookspec is added without an entry here.
"""
import types

import pytest

import flatland
from flatland import Check, Metric, RunExtension, hookimpl, hookspecs
from flatland_plugins.learners import gradient_descent
from flatland_plugins.noise import UpdateNoise

HOOK_TESTS = {
    "flatland_losses": ("losses", lambda: flatland.testing.smoke_loss()),
    "flatland_noise_models": ("noise", UpdateNoise),
    "flatland_learners": ("learners", gradient_descent),
    "flatland_metrics": ("metrics", lambda: Metric("smoke-loss", lambda p, loss: loss(p), every=10)),
    "flatland_checks": ("checks", lambda: Check("smoke", lambda options: [], suite="test")),
    "flatland_run_extensions": ("run_extensions", RunExtension),
}


def _spec_names():
    pm = flatland.assemble(builtins=[], entry_points=[]).manager
    return {name for name in dir(pm.hook) if name.startswith("flatland_")}


def test_every_hookspec_has_a_test():
    assert _spec_names() == set(HOOK_TESTS) == set(hookspecs.HOOK_KINDS)


@pytest.mark.parametrize("hook", sorted(HOOK_TESTS))
def test_hook_registers_a_conforming_component(hook):
    import flatland.testing

    kind, factory = HOOK_TESTS[hook]

    def impl(register):
        register("via-" + hook, factory, f"registered through {hook}")

    plugin = types.SimpleNamespace(**{hook: hookimpl(impl)})
    asm = flatland.assemble(builtins=[], entry_points=[], extra=[("solo", plugin)])
    assert not asm.broken
    entry = asm.registry.entry(kind, "via-" + hook)
    assert entry.kind == hookspecs.HOOK_KINDS[hook] and "solo" in entry.origin
    flatland.testing.check_component(entry)


def test_run_extension_hook_registers_a_conforming_extension():
    from flatland.extensions import check_run_extension

    plugin = types.SimpleNamespace(flatland_run_extensions=hookimpl(
        lambda register: register("via-hook", RunExtension, "registered through flatland_run_extensions")))
    asm = flatland.assemble(builtins=[], entry_points=[], extra=[("solo", plugin)])
    assert not asm.broken
    check_run_extension(asm.registry.create("run_extensions", "via-hook"))


def test_hookspecs_never_use_firstresult():
    pm = flatland.assemble(builtins=[], entry_points=[]).manager
    for name in _spec_names():
        assert not getattr(pm.hook, name).spec.opts.get("firstresult"), name
