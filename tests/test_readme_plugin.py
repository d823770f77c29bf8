"""The README's complete plugin is under 30 lines, registers, and conforms."""
import pathlib
import re
import types

import flatland
from flatland.testing import check_component

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _plugin_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (source,) = [b for b in blocks if "def flatland_learners" in b]
    return source


def test_readme_plugin_is_short_and_works():
    source = _plugin_source()
    assert len(source.strip().splitlines()) < 30
    module = types.ModuleType("readme_plugin")
    exec(compile(source, "README.md", "exec"), module.__dict__)  # our own README, not user input
    asm = flatland.assemble(entry_points=[], extra=[("readme", module)])
    assert not asm.broken, asm.broken
    for kind, name in (("learners", "heavy-ball"), ("losses", "ring")):
        check_component(asm.registry.entry(kind, name))
