"""The README's minimal run extension registers, conforms, and its table and rows reach a run folder."""
import pathlib
import re
import types

import numpy as np

import flatland
from flatland import run_build, runner
from flatland.config import from_dict
from flatland.extensions import check_run_extension

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _extension_module():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (source,) = [b for b in blocks if "def flatland_run_extensions" in b]
    assert len(source.strip().splitlines()) < 30
    module = types.ModuleType("readme_extension")
    exec(compile(source, "README.md", "exec"), module.__dict__)  # our own README, not user input
    return module


def test_readme_extension_runs(tmp_path, monkeypatch):
    module = _extension_module()
    real = run_build.assemble
    monkeypatch.setattr(run_build, "assemble", lambda: real(extra=[("readme-ext", module)]))
    asm = run_build.assemble()
    assert not asm.broken, asm.broken
    check_run_extension(asm.registry.create("run_extensions", "polar"))
    cfg = from_dict({"task": {"name": "fig5a", "start": [0.0, 2.0]}, "learner": {"name": "gd", "lr": 0.01},
                     "noise": {"name": "update", "sigma": 0.001}, "polar": {"degrees": True},
                     "run": {"steps": 250, "seeds": 2, "log_every": 50, "snapshot_every": 100,
                             "checkpoint_every": 100}})
    runner.run(cfg, tmp_path / "r", progress=False, figures=False)
    a = runner.read_csv(tmp_path / "r" / "angles.csv")
    assert a["step"].tolist() == [0, 0, 100, 100, 200, 200, 250, 250]
    assert np.allclose(a["angle"][:2], 90.0)
    assert "[polar]\ndegrees = true" in (tmp_path / "r" / "config.toml").read_text()
