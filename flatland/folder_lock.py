"""One writer per results folder: an exclusive lock file holding ``pid@host``.

What: ``with folder_lock(folder, "run"):`` creates ``folder/.flatland.lock``
with ``O_CREAT | O_EXCL`` (atomic: of two processes only one succeeds) and
removes it on exit. A lock whose process is gone (same host, pid not alive) is
stale and taken over; a live one is a one-line UserError naming the pid.

Why: two ``flatland run`` (or two sweeps) into the same folder would
interleave their rows and checkpoints; a sweep and a run of one of its points
share the same rule. The lock is advisory — it guards flatland's own writers.
"""
from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from .errors import UserError

LOCK_NAME = ".flatland.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def folder_lock(folder, what: str):
    """Hold the folder's lock for the block (module doc); ``what`` names the holder in messages."""
    path = Path(folder) / LOCK_NAME
    host = socket.gethostname()
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid, _, held_on = path.read_text().strip().partition("@")
            if held_on != host or not pid.isdigit() or _alive(int(pid)):
                on = "" if held_on == host else f" on {held_on}"
                raise UserError(f"{folder} is in use by another {what} (pid {pid}{on}); wait for it or use "
                                f"another folder (remove {path} if no such process is running)") from None
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}@{host}\n")
        break
    else:
        raise UserError(f"could not take the lock {path}; remove it if no {what} is running there")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
