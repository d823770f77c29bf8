"""A wall-clock budget for symbolic work, so a hostile or huge expression ends in one line, not a hang.

What: ``symbolic_budget(what)`` is a context manager; when the work inside
takes longer than ``FLATLAND_SYMBOLIC_SECONDS`` (default 60 s) it stops it with
a :class:`flatland.errors.UserError` naming ``what``. It uses ``SIGALRM``, so
it acts only in the main thread of a POSIX process (elsewhere it does
nothing); SymPy runs Python code, which the alarm interrupts between
bytecodes. The parser's own limits (:mod:`._parse`) keep single operations,
such as building a huge integer, from outlasting the alarm.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading

from flatland.errors import UserError

DEFAULT_SECONDS = 60.0
REPEAT = 0.25   # seconds between alarms once the budget is spent (module doc of symbolic_budget)


class _OverBudget(BaseException):
    """Not an Exception: code inside the budget that catches Exception (a plugin's covariance evaluated
    under ``except Exception``, say) must not swallow it, or the work goes on with no budget left."""


def budget_seconds() -> float:
    """The budget from ``FLATLAND_SYMBOLIC_SECONDS`` (a positive number), else the default."""
    raw = os.environ.get("FLATLAND_SYMBOLIC_SECONDS", "")
    try:
        value = float(raw) if raw else DEFAULT_SECONDS
    except ValueError:
        raise UserError(f"FLATLAND_SYMBOLIC_SECONDS must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise UserError(f"FLATLAND_SYMBOLIC_SECONDS must be positive, got {raw!r}")
    return value


@contextlib.contextmanager
def symbolic_budget(what: str):
    """Stop the block with a one-line UserError after :func:`budget_seconds` (module doc)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    seconds = budget_seconds()
    inside = [True]

    def _alarm(signum, frame):
        if inside[0]:
            raise _OverBudget

    previous = signal.signal(signal.SIGALRM, _alarm)
    # then again every REPEAT s: an alarm that lands in a finalizer (__del__, a weakref callback) is printed
    # as "Exception ignored" and lost, and a one-shot alarm let the work run on with no budget left
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT)
    try:
        yield
    except _OverBudget:
        inside[0] = False
        raise UserError(f"{what} took more than {seconds:g} s of symbolic work; simplify the expression "
                        "(or raise FLATLAND_SYMBOLIC_SECONDS)") from None
    finally:
        inside[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
