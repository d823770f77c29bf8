"""The training report of ``flatland infer --train``: Markdown plus figures, every number with its interval.

What: ``write_report(out, evaluation, match_summary, plan)`` writes
``report.md`` and ``figures/{confusion,accuracy_vs_recording,ablation}.png``
into ``out``. Accuracies are fractions of recordings classified correctly,
with 95% percentile-bootstrap intervals over runs (see
:mod:`flatland.infer.evaluate`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..check_figures import _plt
from ..results import write_captions
from .evaluate import confusable, recognised_text


def _ci(t) -> str:
    return f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"


def _figures(ev, out: Path) -> list:
    plt = _plt()
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    paths, captions = [], []
    fig, ax = plt.subplots(figsize=(1.2 * len(ev.classes) + 2.5, 1.0 * len(ev.classes) + 1.5))
    row = ev.confusion / np.maximum(ev.confusion.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(row, vmin=0, vmax=1, cmap="Blues")
    for i in range(len(ev.classes)):
        for j in range(len(ev.classes)):
            ax.text(j, i, f"{row[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if row[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(ev.classes)), ev.classes, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(ev.classes)), ev.classes, fontsize=8)
    ax.set_xlabel("inferred mechanism")
    ax.set_ylabel("true mechanism")
    fig.colorbar(im, ax=ax, label="share of the row's recordings")
    ax.set_title("held-out runs (grouped CV)", fontsize=10)
    fig.tight_layout()
    paths.append(figs / "confusion.png")
    captions.append((paths[-1], "confusion matrix of the classifier on held-out runs (cross-validation folds grouped by run): row = true mechanism, column = inferred; each row's shares sum to 1."))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
    for ax, (name, d) in zip(axes, (("units recorded", ev.by_units), ("sessions", ev.by_sessions),
                                    ("observation noise (× unit s.d.)", ev.by_obs_noise))):
        xs = sorted(d)
        y = np.array([d[x] for x in xs])
        ax.errorbar(range(len(xs)), y[:, 0], yerr=[y[:, 0] - y[:, 1], y[:, 2] - y[:, 0]], fmt="o-", capsize=3)
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])
        ax.axhline(ev.chance, color="0.5", ls="--", lw=0.8, label="largest class share")
        ax.set_xlabel(name)
    axes[0].set_ylabel("accuracy (95% bootstrap CI over runs)")
    axes[0].legend(fontsize=8)
    fig.suptitle("accuracy against what was recorded", fontsize=10)
    fig.tight_layout()
    paths.append(figs / "accuracy_vs_recording.png")
    captions.append((paths[-1], "accuracy of the held-out recordings grouped by units recorded, sessions and observation "
                                 "noise: mean with its 95% percentile-bootstrap interval over runs; dashed: the largest "
                                 "class share (what always guessing that class scores)."))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    if ev.ablation:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        names = list(ev.ablation)
        y = np.array([ev.ablation[n] for n in names])
        ax.errorbar(range(len(names)), y[:, 0], yerr=[y[:, 0] - y[:, 1], y[:, 2] - y[:, 0]], fmt="o", capsize=3)
        ax.axhline(ev.model[0], color="C1", lw=1, label=f"all features ({ev.model[0]:.2f})")
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel("accuracy without the feature")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(figs / "ablation.png")
        captions.append((paths[-1], "accuracy with one feature left out (95% bootstrap interval over runs) against the "
                                     "model with all features (orange line): a feature whose removal lowers accuracy "
                                     "carries information the others do not."))
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    write_captions(figs, captions, "written by flatland infer")
    return paths


def _region(support: dict) -> str:
    return " and ".join(f"{q} [{lo:.2f}, {hi:.2f}]" for q, (lo, hi) in support.items())


def write_report(out, ev, match_summary: dict | None, plan, source: str) -> Path:
    """report.md and figures in ``out`` (module doc); returns the report's path."""
    out = Path(out)
    paths = _figures(ev, out)
    L = [f"# Which mechanism made this drift? Classifier trained on `{source}`", "",
         f"{ev.n_runs} runs, {ev.n_recordings} recordings; mechanisms: {', '.join(ev.classes)}.",
         f"Recordings per run: units {list(plan.units)}, sessions {list(plan.sessions)}, observation noise "
         f"{list(plan.obs_noise)}, {plan.draws} draw(s) each, from the last {1 - plan.start:.0%} of the logged run.",
         ""]
    if match_summary:
        cells = (f", balanced in {match_summary['bins']} cells per cue" if match_summary["bins"] else "")
        kept = (f"{match_summary['kept']} of {match_summary['runs']} runs kept "
                f"({', '.join(f'{k} {v}' for k, v in match_summary['per_mechanism'].items())})")
        if "per_task" in match_summary:
            L += [f"Matched within each task on the common support of {' and '.join(match_summary['cues'])}{cells}: "
                  f"{kept}.", "", "| task | region | runs kept | left out |", "|---|---|---|---|"]
            L += [f"| {t} | {_region(d['support'])} | {d['kept']} ({', '.join(f'{k} {v}' for k, v in d['per_mechanism'].items())}) "
                  f"| {', '.join(d['left_out']) or '—'} |" for t, d in match_summary["per_task"].items()] + [""]
        else:
            L += [f"Matched on the common support of {_region(match_summary['support'])}{cells}: {kept}."
                  + (f" Left out, because their runs share no region of these cues with the others: "
                     f"{', '.join(match_summary['left_out'])}." if match_summary.get("left_out") else ""), ""]
    L += ["Accuracy: share of recordings classified correctly; 95% percentile bootstrap over runs; folds grouped "
          "by run.", "",
          "| estimate | value |", "|---|---|",
          f"| classifier (grouped CV) | {_ci(ev.model)} |",
          f"| best single-feature threshold rule (refit per fold) | {_ci(ev.baseline)} |",
          f"| classifier − rule (paired over runs) | {_ci(ev.margin)} |",
          f"| shuffled-label control | {_ci(ev.shuffled)} |",
          f"| largest class share (chance) | {ev.chance:.3f} |", "",
          "Features the rule chose (folds × recordings): "
          + ", ".join(f"{k} ({v})" for k, v in ev.baseline_features.items()) + ".", ""]
    verdict = ("beats" if ev.margin[1] > 0 else "does not beat") + " the best single-feature rule by more than its CI"
    L += [f"**The classifier {verdict}.**", ""]
    if ev.held_out_tasks:
        L += ["## Held-out tasks (train on the other tasks, test on this one)", "",
              "| task | classifier | single-feature rule | classifier − rule | recognised (recordings) |",
              "|---|---|---|---|---|"]
        L += [f"| {t} | {_ci(a)} | {_ci(b)} | {_ci(c)} | {recognised_text(ev.held_out_recognised.get(t, {}))} |"
              for t, (a, b, c) in ev.held_out_tasks.items()] + [""]
        a, b, c = ev.held_out_tasks["all held-out tasks"]
        L += [f"**On held-out tasks the classifier {'beats' if c[1] > 0 else 'does not beat'} the best single-feature "
              f"rule by more than its CI** (margin {_ci(c)}).", ""]
    L += ["## Accuracy against what was recorded", ""]
    for name, d in (("units", ev.by_units), ("sessions", ev.by_sessions), ("observation noise", ev.by_obs_noise)):
        L += [f"* {name}: " + "; ".join(f"{k}: {_ci(v)}" for k, v in sorted(d.items()))]
    L += ["", "## Confusion (rows: true, columns: inferred; recordings)", "",
          "| | " + " | ".join(ev.classes) + " |", "|---" * (len(ev.classes) + 1) + "|"]
    L += [f"| {c} | " + " | ".join(str(v) for v in ev.confusion[i]) + " |" for i, c in enumerate(ev.classes)]
    pairs = confusable(ev.classes, ev.confusion)
    L += ["", "Pairs mistaken for each other in at least 15% of their recordings: "
          + ("; ".join(f"{a} ↔ {b} ({r:.0%})" for a, b, r in pairs) if pairs else "none") + "."]
    if ev.ablation:
        L += ["", "## Feature ablation (accuracy without each feature)", "", "| feature left out | accuracy |", "|---|---|"]
        L += [f"| {n} | {_ci(v)} |" for n, v in ev.ablation.items()]
    L += ["", "Figures: " + ", ".join(f"`{p.relative_to(out)}`" for p in paths), ""]
    path = out / "report.md"
    path.write_text("\n".join(L))
    return path
