"""Statistics of a sweep table, with their confidence intervals, and the paper-comparison verdict.

What: ``wilson(k, n)`` — a proportion with its Wilson score interval;
``median_ci(x)`` — a median with its distribution-free interval from the
order statistics (binomial ranks; no resampling, so the report is the same
every time); ``pearson_ci(x, y)`` — a correlation with its Fisher-z interval;
``claim(...)`` — a :class:`SweepClaim` judged by the one rule
:func:`paper_verdict`. All intervals are 95% by default.

The rule: **reproduced** when the paper's number lies inside the measured
interval and the interval is precise enough to tell (its half-width within the
claim's stated tolerance ``tol``, in log10 units for a claim with ``log=True``);
**inconclusive** when the paper's number lies inside an interval too wide to
tell (more runs are needed); **partly** when it lies outside but the claim's
qualitative statement (given with the claim, e.g. "most runs sparsify",
"r > 0") holds over the whole interval; **not reproduced** otherwise; **not
measured** with fewer than ``MIN_N`` runs. The rule and each claim's tolerance
are fixed before any sweep is run, and a plugin's claims use the same rule.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import numpy as np
from scipy import stats

REPRODUCED, INCONCLUSIVE, PARTLY, NOT, UNMEASURED = (
    "reproduced", "inconclusive", "partly", "not reproduced", "not measured")
MIN_N = 3
LEVEL = 0.95


@dataclasses.dataclass
class SweepSection:
    """What a run extension adds to ``flatland report``: a titled list of claims, figures, notes.

    ``figures``: paths, or ``(path, caption)`` pairs whose captions go into ``figures/README.md``.
    """

    title: str
    claims: list
    figures: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SweepClaim:
    """One paper number beside the sweep's: estimate, interval, runs used, verdict and why."""

    claim: str
    estimate: float
    lo: float
    hi: float
    n: int
    paper: float
    verdict: str
    rule: str
    estimator: str
    qualitative: str = ""
    tolerance: str = ""

    def row(self) -> str:
        """One Markdown table row (claim, paper, measured, runs, verdict, tolerance, estimator, partly if)."""
        est = "–" if not math.isfinite(self.estimate) else f"{self.estimate:.3g} [{self.lo:.3g}, {self.hi:.3g}]"
        return (f"| {self.claim} | {self.paper:.3g} | {est} | {self.n} | **{self.verdict}** | {self.tolerance} | "
                f"{self.estimator} | {self.qualitative or '–'} |")


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def wilson(k: int, n: int, level: float = LEVEL) -> tuple[float, float, float]:
    """(k/n, lo, hi): the Wilson score interval of a binomial proportion (NaNs when n = 0)."""
    if n == 0:
        return math.nan, math.nan, math.nan
    z, p = _z(level), k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return p, min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def median_ci(x, level: float = LEVEL) -> tuple[float, float, float]:
    """(median, lo, hi): order statistics x_(j), x_(n+1−j) with j the largest rank whose coverage
    P(j ≤ Binomial(n, ½) ≤ n − j) is at least ``level``. Where even the whole range covers less (1 − 2·½ⁿ:
    n ≤ 5 at 95%, where [min, max] of 2 runs is a 50% interval), lo and hi are NaN: no such interval."""
    x = np.asarray(x, float)
    x = np.sort(x[np.isfinite(x)])
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    if 1 - 2 * 0.5**n < level:
        return float(np.median(x)), math.nan, math.nan
    alpha = (1 - level) / 2
    j = max(1, int(np.sum(stats.binom.cdf(np.arange(n), n, 0.5) <= alpha)))   # ranks 1..j−1 have cdf ≤ α/2
    return float(np.median(x)), float(x[j - 1]), float(x[n - j])


def pearson_ci(x, y, level: float = LEVEL) -> tuple[float, float, float, int]:
    """(r, lo, hi, n) over the pairs where both are finite; the interval from Fisher's z (NaNs when n < 4)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, n = x[ok], y[ok], int(ok.sum())
    if n < 4 or np.std(x) == 0 or np.std(y) == 0:
        return math.nan, math.nan, math.nan, n
    r = float(np.corrcoef(x, y)[0, 1])
    z, half = math.atanh(max(min(r, 1 - 1e-15), -1 + 1e-15)), _z(level) / math.sqrt(n - 3)
    return r, math.tanh(z - half), math.tanh(z + half), n


def paper_verdict(paper: float, lo: float, hi: float, n: int, side: Optional[Callable[[float], bool]],
                  tol: float = math.inf, log: bool = False) -> str:
    """The rule of the module doc; ``side(v)`` is the claim's qualitative statement about a value v."""
    if n < MIN_N or not (math.isfinite(lo) and math.isfinite(hi)):
        return UNMEASURED
    if lo <= paper <= hi:
        if log and lo <= 0:
            return INCONCLUSIVE
        half = (math.log10(hi) - math.log10(lo)) / 2 if log else (hi - lo) / 2
        return REPRODUCED if half <= tol else INCONCLUSIVE
    if side is not None and side(lo) and side(hi):
        return PARTLY
    return NOT


def claim(text: str, stat: tuple, paper: float, estimator: str, qualitative: str = "",
          side: Optional[Callable[[float], bool]] = None, tol: float = math.inf, log: bool = False) -> SweepClaim:
    """A :class:`SweepClaim` from ``stat`` = (estimate, lo, hi, n), judged by :func:`paper_verdict`.

    ``qualitative`` words what ``side`` tests; ``tol`` is the largest interval half-width (log10 units
    when ``log``) at which agreement counts as reproduced rather than inconclusive.
    """
    est, lo, hi, n = stat
    unit = " dex" if log else ""
    rule = (f"reproduced if the paper's value is in the 95% interval and its half-width ≤ {tol:g}{unit}"
            + (f"; partly if the whole interval satisfies: {qualitative}" if side is not None else ""))
    return SweepClaim(text, est, lo, hi, int(n), paper, paper_verdict(paper, lo, hi, n, side, tol, log), rule,
                      estimator, qualitative if side is not None else "", f"±{tol:g}{unit}")


#: the rule in words, for reports
RULE = ("**reproduced** when the paper's value is inside the 95% interval and the interval's half-width is within "
        "the claim's tolerance; **inconclusive** when it is inside an interval wider than that (more runs needed); "
        "**partly** when it is outside but the whole interval satisfies the claim's qualitative statement; "
        f"**not reproduced** otherwise; **not measured** with fewer than {MIN_N} runs")


def fraction(mask) -> tuple[float, float, float, int]:
    """(share, lo, hi, n) of True among the finite entries of a boolean-like array (Wilson interval)."""
    m = np.asarray(mask, float)
    m = m[np.isfinite(m)]
    return (*wilson(int(m.sum()), m.size), m.size)


def median(x) -> tuple[float, float, float, int]:
    """(median, lo, hi, n) over the finite entries (order-statistic interval)."""
    x = np.asarray(x, float)
    return (*median_ci(x), int(np.isfinite(x).sum()))
