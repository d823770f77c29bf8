"""The ``flatland`` command line: ``flatland COMMAND --help`` for each command.

Each command lives in its own module ``flatland.cli.<name>_cmd`` exposing
``add_parser(subparsers)`` and ``run(args) -> int``. A :class:`UserError` (or
a bad option, or a path that cannot be read or written) prints one line
``flatland: error: ...`` and exits with status 2; a plugin's error exits with 3;
anything else is a bug: one line naming a file that holds the traceback, exit
status 70 (``FLATLAND_TRACEBACK=1`` shows the traceback instead).
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys

from ..errors import PluginError, UserError

#: command modules, in the order ``--help`` lists them
COMMANDS = ("plugins", "list", "theory", "check", "run", "sweep", "report", "geometry", "record", "infer", "reproduce")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit status 2, and whose help is plain text.

    Command descriptions come from module docstrings written for Sphinx-style
    readers; their double backticks are dropped from what ``--help`` prints.
    """

    def format_help(self):
        return super().format_help().replace("``", "")

    def error(self, message):
        raise UserError(f"{self.prog}: error: {message} (see {self.prog} --help)")

    def refuse_unknown(self, extra) -> None:
        """One line for arguments this (sub)command does not take, with the closest option it does."""
        options = [o for a in self._actions for o in a.option_strings]
        flags = [e.split("=", 1)[0] for e in extra if e.startswith("--")]
        close = difflib.get_close_matches(flags[0], options, n=1, cutoff=0.75) if flags else []
        self.error(f"unrecognized argument(s) {' '.join(extra)}" + (f" — did you mean {close[0]}?" if close else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="flatland",
        description="flatland: test theories of implicit regularization and drift near zero-loss manifolds. "
                    "Run `flatland COMMAND --help` for each command; `flatland check` runs the main suite.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    parser.commands = sub.choices  # name → its parser, to name the command in an error
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"flatland.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name != f"flatland.cli.{name}_cmd":
                raise
            continue  # command not built yet
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:
            parser.commands.get(args.command, parser).refuse_unknown(extra)
        if args.command is None:
            parser.print_help()
            return 2
        return int(args.run(args) or 0)
    except UserError as exc:
        msg = str(exc)
        print(msg if msg.startswith("flatland") else f"flatland: error: {msg}", file=sys.stderr)
        return 2
    except PluginError as exc:
        print(f"flatland: plugin error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("flatland: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `flatland list | head`: the reader stopped reading, which is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # nothing more to flush at exit
        return 141
    except OSError as exc:  # a path the user gave cannot be read or written
        where = f": {exc.filename}" if exc.filename else ""
        print(f"flatland: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback kept in a file
        if os.environ.get("FLATLAND_TRACEBACK"):
            raise
        first = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        where = _plugin_frame(exc.__traceback__)
        if where:   # raised in a third-party plugin's code: its author's to fix, not flatland's
            print(f"flatland: plugin error in {where}: {first} (traceback in {_save_traceback()})", file=sys.stderr)
            return 3
        print(f"flatland: internal error (a bug — please report it with {_save_traceback()}): {first}",
              file=sys.stderr)
        return 70


def _plugin_frame(tb) -> str:
    """'file:line (package)' of the innermost traceback frame in a third-party plugin's package (one the
    ``flatland`` entry points name, built-ins aside), or '' when none is on the stack."""
    from importlib import metadata as md

    try:
        packages = {str(ep.value).split(":")[0].split(".")[0] for ep in md.entry_points(group="flatland")}
    except Exception:  # noqa: BLE001 - broken metadata: fall back to the internal-error message
        return ""
    packages -= {"flatland", "flatland_plugins"}
    found = ""
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.split(".")[0] in packages:
            found = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno} ({module.split('.')[0]})"
        tb = tb.tb_next
    return found


def _save_traceback() -> str:
    """Write the current exception's traceback to a temporary file; its path."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="flatland-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write(" ".join(sys.argv) + "\n\n" + traceback.format_exc())
    return path


if __name__ == "__main__":
    sys.exit(main())
