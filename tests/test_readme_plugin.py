"""The README's complete plugin is short, registers, conforms, and gets a prediction from its declarations."""
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
    assert len(source.strip().splitlines()) < 45
    module = types.ModuleType("readme_plugin")
    exec(compile(source, "README.md", "exec"), module.__dict__)  # our own README, not user input
    asm = flatland.assemble(entry_points=[], extra=[("readme", module)])
    assert not asm.broken, asm.broken
    for kind, name in (("learners", "my-gd"), ("losses", "tilt"), ("noise", "mult")):
        check_component(asm.registry.entry(kind, name))
    law, why = flatland.step_law(asm.registry.create("noise", "mult"), asm.registry.create("learners", "my-gd"))
    assert law is not None, why
    from flatland.theory import Problem, predict

    pred = predict(Problem.from_loss(asm.registry.create("losses", "tilt")), "x=1,y=1.5", law,
                   hyper={"noise": {"sigma": 0.02}})
    assert pred.drift_finite_eta[0] != 0 and not pred.closed_form
