"""The example third-party plugin in examples/: installed by the README's set-up command."""
import importlib.metadata as md
import json

import flatland
from flatland.cli import main
from flatland.testing import check_component


def test_example_plugin_is_installed_and_listed_with_its_origin(capsys):
    try:
        md.distribution("flatland-example-plugin")
    except md.PackageNotFoundError:  # pragma: no cover - a set-up mistake, reported as such
        raise AssertionError("flatland-example-plugin is not installed: run the README's set-up command "
                             "(it installs ./examples/flatland-example-plugin)") from None
    assert main(["list", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    ours = {(i["kind"], i["name"]): i["origin"] for i in items if "flatland-example-plugin" in i["origin"]}
    assert set(ours) == {("learners", "noisy-heavy-ball"), ("losses", "ring")}
    assert all("entry point example" in o for o in ours.values())


def test_example_plugin_components_conform():
    import flatland_example

    asm = flatland.assemble(entry_points=[], extra=[("example-direct", flatland_example)])
    for kind, name in (("learners", "noisy-heavy-ball"), ("losses", "ring")):
        check_component(asm.registry.entry(kind, name))
