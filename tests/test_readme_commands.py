"""Every `flatland …` command in the README's shell blocks parses as written, and the files it names exist.

Running them all would take the README's stated minutes; this test catches what breaks a newcomer
first — a renamed option, a missing example file — in well under a second. The commands that do run
in the default suite are covered by their own tests (run, record, infer, sweep, report, check).
"""
import re
import shlex
from pathlib import Path

import pytest

from flatland.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _commands():
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part.strip())
                if words and words[0].endswith("flatland"):
                    out.append(words[1:])
    return out


COMMANDS = _commands()


def test_the_readme_has_commands():
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a)[:60] for a in COMMANDS])
def test_readme_command_parses_and_names_existing_files(argv):
    args = build_parser().parse_args(argv)
    assert args.command
    for word in argv:
        if word.startswith("examples/"):
            assert (ROOT / word).exists(), f"README names {word}, which is not in the repository"
