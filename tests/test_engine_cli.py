"""CLI: plugins/list output, JSON shape, and one-line errors with exit status 2."""
import json

import pytest

from flatland.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_has_required_fields(capsys):
    code, out, err = run(capsys, "list", "--json")
    assert code == 0
    items = json.loads(out)
    assert {"kind", "name", "summary", "origin"} <= set(items[0])
    kinds = {i["kind"] for i in items}
    assert {"losses", "noise", "learners"} <= kinds


def test_list_one_kind(capsys):
    code, out, _ = run(capsys, "list", "noise", "--json")
    assert code == 0 and {i["kind"] for i in json.loads(out)} == {"noise"}


def test_plugins_json(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    data = json.loads(out)
    valleys = [p for p in data["plugins"] if p["name"] == "flatland.valleys"][0]
    assert valleys["hooks"] == ["flatland_losses"] and valleys["version"] and valleys["origin"]


@pytest.mark.parametrize("argv,needle", [
    (["list", "noize"], "did you mean 'noise'"),
    (["list", "--jsn"], "flatland list: error: unrecognized argument(s) --jsn — did you mean --json?"),
    (["no-such-command"], "invalid choice"),
])
def test_user_mistakes_give_one_line_and_status_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_help_everywhere(capsys):
    from flatland.cli import COMMANDS

    for argv in [["--help"]] + [[c, "--help"] for c in COMMANDS]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        assert "usage:" in out and "``" not in out, argv      # plain text, not reST


def test_broken_plugin_does_not_break_list(capsys, monkeypatch):
    import importlib.metadata as md

    class Broken:
        name, value, dist = "broken", "nowhere:plugin", None

        def load(self):
            raise ImportError("cannot import nowhere")

    real = md.entry_points
    monkeypatch.setattr(md, "entry_points", lambda group=None: list(real(group=group)) + [Broken()])
    code, out, err = run(capsys, "list", "--json")
    assert code == 0 and json.loads(out)
    assert "plugin 'broken'" in err and "cannot import nowhere" in err


def test_file_system_errors_are_one_line_and_bugs_one_line_with_a_saved_traceback(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["run", "examples/small.toml", "--out", str(blocker / "sub"), "--steps", "10", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "flatland: error:" in err and "a-file" in err

    from flatland.cli import list_cmd

    def bug(args):
        raise ZeroDivisionError("oops\nmore")

    monkeypatch.setattr(list_cmd, "run", bug)
    monkeypatch.delenv("FLATLAND_TRACEBACK", raising=False)
    assert main(["list"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" in err and "ZeroDivisionError: oops" in err
    saved = Path(err.split("report it with ")[1].split(")")[0])
    assert "Traceback" in saved.read_text()
    saved.unlink()

    # raised inside an installed plugin's code (its `[task]` option given as "16", say): the plugin's error,
    # exit 3, naming its file, where it was flatland's "internal error (a bug — please report it)"
    import flatland_example

    def plugin_bug(args):
        flatland_example._normals_like("not a key", {"w": 1.0})

    monkeypatch.setattr(list_cmd, "run", plugin_bug)
    assert main(["list"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("flatland: plugin error in ") and "internal error" not in err
    assert "flatland_example/__init__.py:" in err and "(flatland_example)" in err, err
    Path(err.split("traceback in ")[1].split(")")[0]).unlink()


def _with_plugin(monkeypatch, **hooks):
    """Install a fake entry-point plugin ``myplug`` implementing ``hooks`` for the commands run next."""
    import importlib.metadata as md
    import types

    from flatland import hookimpl

    class EntryPoint:
        name, value, dist = "myplug", "myplug:plugin", None

        def load(self):
            return types.SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()})

    real = md.entry_points
    monkeypatch.setattr(md, "entry_points", lambda group=None: list(real(group=group)) + [EntryPoint()])
    monkeypatch.setenv("FLATLAND_XLA_CACHE", "off")


def _raising_check(register):
    register("boom-check", lambda: 1 / 0, "a check whose factory raises")


def test_a_check_whose_factory_raises_takes_down_no_other_check(capsys, monkeypatch, tmp_path):
    """#17 item 5: the broken check is left out; --only another check runs; strict mode is one line, exit 3."""
    _with_plugin(monkeypatch, flatland_checks=_raising_check)
    code, out, err = run(capsys, "check", "--only", "geometry-known-answers", "--out", str(tmp_path / "a"))
    assert code == 0 and "4/4 passed" in out, err
    monkeypatch.setenv("FLATLAND_STRICT_PLUGINS", "1")
    code, out, err = run(capsys, "check", "--only", "geometry-known-answers", "--out", str(tmp_path / "b"))
    assert code == 3 and err.count("\n") == 1 and "plugin 'myplug'" in err and "ZeroDivisionError" in err, err


def test_a_check_that_raises_in_plugin_code_names_the_line_and_exits_3(capsys, monkeypatch, tmp_path):
    """A README-only plugin author's check that raised gave a row '(did not run)' with no file or line and exit 1;
    the README promises exit 3 and the line. The other checks still run and the results are kept."""
    from pathlib import Path

    import flatland_example
    from flatland import Check

    def run_bad(options):
        flatland_example._normals_like("not a key", {"w": 1.0})   # raises inside the installed plugin's code

    def raises_here(options):
        raise RuntimeError("a bug of the check's own")

    def checks(register):
        register("plugin-raises", lambda: Check("plugin-raises", run_bad, "mine"), "raises in plugin code")
        register("local-raises", lambda: Check("local-raises", raises_here, "mine2"), "raises outside a plugin")

    _with_plugin(monkeypatch, flatland_checks=checks)
    code, out, err = run(capsys, "check", "--suite", "mine", "--out", str(tmp_path / "a"))
    err = err.strip().splitlines()[-1]   # after the progress lines
    assert code == 3 and err.startswith("flatland: plugin error in check plugin-raises"), err
    assert "flatland_example/__init__.py:" in err and "(flatland_example)" in err and "traceback in " in err, err
    saved = json.loads((tmp_path / "a" / "results.json").read_text())
    assert saved["results"][0]["details"]["raised_in"] == "plugin"
    Path(err.split("traceback in ")[1].split(")")[0]).unlink()
    code, out, err = run(capsys, "check", "--suite", "mine2", "--out", str(tmp_path / "b"))
    err = err.strip().splitlines()[-1]
    assert code == 70 and "internal error in check local-raises" in err and "test_engine_cli.py:" in err, err
    Path(err.split("traceback in ")[1].split(")")[0]).unlink()


@pytest.mark.parametrize("argv, what", [
    (["theory", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--learner", "my-learner"],
     "unknown learner 'my-learner'"),
    (["theory", "--loss", "my-loss", "--at", "x=1,y=0", "--noise", "update"], "unknown loss 'my-loss'"),
    (["check", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "my-noise"], "unknown noise model 'my-noise'"),
    (["check", "--only", "boom-check"], "unknown check 'boom-check'"),
    (["check", "--suite", "mine"], "no checks in suite 'mine'"),
])
def test_theory_and_check_say_which_plugins_were_left_out_when_a_name_is_unknown(capsys, monkeypatch, tmp_path,
                                                                                  argv, what):
    """#17 item 5: the name may be the broken plugin's — say so, instead of a bare "unknown learner"."""
    _with_plugin(monkeypatch, flatland_checks=_raising_check)
    code, _, err = run(capsys, *argv, *(["--out", str(tmp_path / "r")] if argv[0] == "check" else []))
    assert code == 2 and err.count("\n") == 1, err
    assert what in err and "plugin(s) left out as broken: myplug (`flatland plugins` says why)" in err, err


_GARBAGE = {"int": lambda **o: 42, "None": lambda **o: None, "object": lambda **o: object(),
            "raises": lambda **o: 1 / 0}


@pytest.mark.parametrize("garbage", list(_GARBAGE))
def test_a_component_factory_returning_garbage_is_a_plugin_error_naming_it_where_used(capsys, monkeypatch, tmp_path,
                                                                                     garbage):
    """#17 item 5: factories with options cannot be built at assembly; what they build is checked where they
    are used — a one-line plugin error (exit 3) naming the component and the plugin, not an internal error."""
    make = _GARBAGE[garbage]
    _with_plugin(monkeypatch, flatland_learners=lambda register: register("bad-learner", make, "garbage"),
                 flatland_noise_models=lambda register: register("bad-noise", make, "garbage"),
                 flatland_losses=lambda register: register("bad-loss", make, "garbage"),
                 flatland_metrics=lambda register: register("bad-metric", make, "garbage"))
    theory = ["theory", "--at", "x=1,y=0"]
    for argv, what in [(theory + ["--loss", "(x*y)**2", "--noise", "update", "--learner", "bad-learner"],
                        "learner 'bad-learner'"),
                       (theory + ["--loss", "(x*y)**2", "--noise", "bad-noise"], "noise model 'bad-noise'"),
                       (theory + ["--loss", "bad-loss", "--noise", "update"], "loss 'bad-loss'")]:
        code, _, err = run(capsys, *argv)
        assert code == 3 and err.count("\n") == 1 and what in err and "(entry point myplug)" in err, err
        expected = "raised ZeroDivisionError" if garbage == "raises" else f"returned {type(make()).__name__}, not"
        assert expected in err, err
    cfg = tmp_path / "c.toml"
    cfg.write_text('[task]\nname = "fig5a"\n[learner]\nname = "gd"\nlr = 0.05\n[noise]\nname = "update"\n'
                   'sigma = 0.01\n[run]\nsteps = 20\nlog_every = 10\nsnapshot_every = 20\ncheckpoint_every = 20\n'
                   'metrics = ["loss", "bad-metric"]\n')
    code, _, err = run(capsys, "run", str(cfg), "--out", str(tmp_path / "o"), "--quiet", "--no-figures")
    assert code == 3 and err.count("\n") == 1 and "metric 'bad-metric'" in err, err


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt()])
def test_a_plugin_that_exits_at_import_is_named_and_every_command_still_runs(capsys, monkeypatch, raised):
    """#17 item 5: sys.exit() or KeyboardInterrupt at a plugin's import killed every command with no hint."""
    import importlib.metadata as md

    class EntryPoint:
        name, value, dist = "quitter", "quitter:plugin", None

        def load(self):
            raise raised

    real = md.entry_points
    monkeypatch.setattr(md, "entry_points", lambda group=None: list(real(group=group)) + [EntryPoint()])
    code, out, err = run(capsys, "list", "learners")
    assert code == 0 and "gd" in out and "plugin 'quitter'" in err and type(raised).__name__ in err, (out, err)
    code, out, _ = run(capsys, "theory", "--loss", "(x*y)**2", "--at", "x=1,y=0", "--noise", "update", "--json")
    assert code == 0 and json.loads(out)["drift_leading"][0] < 0


def test_a_reader_that_stops_reading_is_no_error():
    """`flatland list | head` ended with "flatland: error: Broken pipe"."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "flatland", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                       # before anything is written: the first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err
