"""The ``flatland`` command line: ``flatland COMMAND --help`` for each command.

Each command lives in its own module ``flatland.cli.<name>_cmd`` exposing
``add_parser(subparsers)`` and ``run(args) -> int``. A :class:`UserError` (or
a bad option) prints one line ``flatland: error: ...`` and exits with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import PluginError, UserError

#: command modules, in the order ``--help`` lists them
COMMANDS = ("plugins", "list", "theory", "check", "run", "sweep", "report", "geometry", "reproduce")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit status 2."""

    def error(self, message):
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="flatland",
        description="flatland: test theories of implicit regularization and drift near zero-loss manifolds. "
                    "Run `flatland COMMAND --help` for each command; `flatland check` runs the main suite.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
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
        args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
