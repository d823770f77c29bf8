"""User-facing errors: one clear line, exit status 2, no traceback."""
import difflib

__all__ = ["UserError", "PluginError", "unknown_name"]


class UserError(Exception):
    """A mistake in what the user asked for; the CLI prints it as one line."""


class PluginError(Exception):
    """A plugin could not be loaded or registered (fatal only in strict mode)."""


def unknown_name(what: str, name: str, known) -> UserError:
    """An error for an unknown name that lists the known ones and the closest match."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(known) if known else "(none)"
    return UserError(f"unknown {what} {name!r}{hint} (known: {listing})")
