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
    (["list", "--jsn"], "unrecognized arguments: --jsn"),
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
