"""``report(sweep_dir)``: a sweep's table → Markdown summary, claims.json and figures.

What it writes into ``SWEEP_DIR`` (``report.md``, ``claims.json``,
``figures/*.png``):

* the runs per status, and per mechanism (``learner.name`` × ``noise.name``);
* for every metric logged at the start and the end (``initial.X`` and
  ``final.X`` columns): per mechanism, the share of runs that end lower
  (Wilson 95% interval) and the median of final/initial (order-statistic 95%
  interval), with one figure of the final/initial distributions;
* every run extension's own section (:meth:`flatland.RunExtension.sweep_report`),
  e.g. the eLife sweep's claims for the ReLU tasks, each claim beside the
  paper's number with a verdict by :func:`flatland.sweep_stats.paper_verdict`.

Only finished runs (status ``done``) enter the statistics; diverged, failed and
unfinished runs are counted and listed, never silently dropped.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from .errors import UserError
from .sweep_stats import RULE, median_ci, wilson
from .results import write_captions
from .sweep_table import mechanism_of, read_table

GROUP = ("learner.name", "noise.name")


def _groups(table):
    """(mechanism label, rows) per learner × noise model, labelled as `flatland infer` labels runs."""
    if not set(GROUP) & set(table.columns):
        return [("all", table)]
    labels = [mechanism_of(*(r.get(c) for c in GROUP)) for r in table.to_dict("records")]
    return [(k, g) for k, g in table.groupby(np.asarray(labels, dtype=object), sort=True)]


def paired_metrics(table) -> list:
    """Metrics with both an ``initial.`` and a ``final.`` column."""
    return [c[len("final."):] for c in table.columns
            if c.startswith("final.") and "initial." + c[len("final."):] in table.columns]


def _change_rows(done) -> list:
    rows = []
    for metric in paired_metrics(done):
        for name, g in _groups(done):
            a, b = g[f"initial.{metric}"].to_numpy(float), g[f"final.{metric}"].to_numpy(float)
            ok = np.isfinite(a) & np.isfinite(b)
            lower = wilson(int((b[ok] < a[ok]).sum()), int(ok.sum()))
            pos = ok & (a > 0)
            ratio = median_ci(b[pos] / a[pos]) if pos.any() else (math.nan,) * 3
            rows.append({"metric": metric, "group": name, "n": int(ok.sum()), "lower": lower, "ratio": ratio})
    return rows


def _fmt(t) -> str:
    if not math.isfinite(t[0]):
        return "–"
    if not math.isfinite(t[1]):
        return f"{t[0]:.3g} [too few runs for the interval]"
    return f"{t[0]:.3g} [{t[1]:.3g}, {t[2]:.3g}]"


def _ratio_figure(done, out: Path) -> list:
    metrics = paired_metrics(done)
    if not metrics or done.empty:
        return []
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(done)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1, 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        spread = []
        for i, (name, g) in enumerate(groups):
            a, b = g[f"initial.{metric}"].to_numpy(float), g[f"final.{metric}"].to_numpy(float)
            ok = np.isfinite(a) & np.isfinite(b) & (a > 0)
            r = b[ok] / a[ok]
            jitter = np.random.default_rng(i).uniform(-0.15, 0.15, r.size)
            ax.plot(i + jitter, r, "o", ms=3, alpha=0.6)
            if r.size:
                ax.plot([i - 0.3, i + 0.3], [np.median(r)] * 2, "k-", lw=2)
                spread += [r.min(), r.max()]
        if spread and min(spread) > 0 and max(spread) / min(spread) > 30:
            ax.set_yscale("log")                          # ratios over decades (a loss): log axis
        ax.axhline(1, color="0.5", lw=0.8, ls="--")
        ax.set_xticks(range(len(groups)), [n for n, _ in groups], rotation=30, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.set_ylabel("final / initial (runs; bar = median)")
    fig.suptitle("end of run relative to its start, per mechanism (dashed: no change)", fontsize=10)
    fig.tight_layout()
    path = out / "figures" / "final_over_initial.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [(path, "final / initial value of each logged metric per finished run (dots, jittered), one column "
                   "per mechanism, bar = median, dashed = no change; a log axis where the ratios span decades.")]


def _sections(table, out: Path) -> list:
    from .assembly import assemble

    sections = []
    for entry in assemble().registry.entries("run_extensions"):
        section = entry.factory().sweep_report(table, out)
        if section is not None:
            sections.append(section)
    return sections


def report(sweep_dir) -> dict:
    """Write report.md, claims.json and the figures for the sweep in ``sweep_dir`` (module doc)."""
    from .sweep_run import TABLE

    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / TABLE).exists():
        raise UserError(f"{sweep_dir} holds no sweep table ({TABLE}); give the --out folder of a `flatland sweep`")
    table = read_table(sweep_dir / TABLE)
    done = table[table["status"] == "done"]
    status = table["status"].value_counts().to_dict()
    lines = [f"# Sweep report: {sweep_dir.name}", "",
             f"{len(table)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(status.items()))
             + ". Statistics use the finished (done) runs; intervals are 95%.", ""]
    lines += ["| mechanism | runs | done | diverged | failed | unfinished |", "|---|---|---|---|---|---|"]
    for name, g in _groups(table):
        c = g["status"].value_counts()
        lines.append(f"| {name} | {len(g)} | {c.get('done', 0)} | {c.get('diverged', 0)} | {c.get('failed', 0)} | "
                     f"{int(c.get('partial', 0) + c.get('pending', 0))} |")
    bad = table[table["status"].isin(["failed", "diverged"])]
    if len(bad):
        lines += [""] + [f"* point {r['point']} {r['status']}: {r['reason']}" for _, r in bad.head(20).iterrows()]
        if len(bad) > 20:
            lines.append(f"* … and {len(bad) - 20} more (the table's status and reason columns)")
    changes = _change_rows(done)
    if changes:
        lines += ["", "## Start → end of each run, per mechanism", "",
                  "| metric | mechanism | runs | share lower at the end [95% Wilson] | median final/initial [95%] |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c['metric']} | {c['group']} | {c['n']} | {_fmt(c['lower'])} | {_fmt(c['ratio'])} |"
                  for c in changes]
    figures = _ratio_figure(done, sweep_dir)
    sections = _sections(table, sweep_dir)
    for s in sections:
        lines += ["", f"## {s.title}", "", f"Verdicts: {RULE}.", "",
                  "| claim | paper | measured [95% CI] | runs | verdict | tolerance | estimator | partly if |",
                  "|---|---|---|---|---|---|---|---|"] + [c.row() for c in s.claims]
        lines += [""] + [f"* {n}" for n in s.notes]
        figures += [(f, "") if isinstance(f, (str, Path)) else tuple(f) for f in s.figures]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).relative_to(sweep_dir)})" for f, _ in figures]
        write_captions(sweep_dir / "figures", figures, "written by flatland report")
    (sweep_dir / "report.md").write_text("\n".join(lines) + "\n")
    claims = [dict(dataclasses.asdict(c), section=s.title) for s in sections for c in s.claims]
    (sweep_dir / "claims.json").write_text(json.dumps({"status": status, "changes": changes, "claims": claims},
                                                      indent=1, default=float) + "\n")
    return {"report": sweep_dir / "report.md", "claims": claims, "figures": [f for f, _ in figures]}
