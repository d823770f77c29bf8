"""A dependency-free progress bar on stderr: work done (steps of a run, runs of a sweep), rate and ETA.

On a terminal it redraws one line; otherwise (a log file, CI) it prints a line
at most every ``min_interval`` seconds, so logs stay short.
"""
from __future__ import annotations

import sys
import time


def _hms(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """``update(done)`` after each chunk; rate is measured from the first update after ``start``."""

    def __init__(self, total: int, start: int = 0, label: str = "run", stream=None, min_interval: float = 10.0,
                 unit: str = "steps"):
        self.total, self.start, self.label, self.unit = total, start, label, unit
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.t0 = time.perf_counter()
        self.min_interval = min_interval
        self.last = -1e9

    def update(self, done: int, note: str = "") -> None:
        now = time.perf_counter()
        rate = (done - self.start) / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        width = 24
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        shown = f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"
        line = (f"{self.label} [{bar}] {done:,}/{self.total:,} {self.unit}  {shown} {self.unit}/s  "
                f"ETA {_hms(eta)}" + (f"  {note}" if note else ""))
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
            self.stream.flush()
        elif now - self.last >= self.min_interval or done >= self.total:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last = now

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
