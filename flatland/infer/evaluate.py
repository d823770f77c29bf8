"""How well drift tells its mechanism: grouped cross-validation, held-out tasks, ablations, controls.

Every estimate here treats the run as the independent unit: folds are grouped
by run (a run's recordings are never split between training and test), and
each 95% interval is a percentile bootstrap over runs (2,000 resamples) of the
accuracy over their recordings. The baseline is the best single-feature
threshold rule (:func:`flatland.infer.classifier.single_feature_rule`), refit
inside every training fold. The shuffled-label control permutes mechanisms
across runs, so its accuracy must fall to the largest class share.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from . import classifier
from .features import FEATURES

BOOT = 2000


def _cols(names):
    return [f"f.{n}" for n in names]


def _folds(frame, folds):
    from sklearn.model_selection import GroupKFold

    k = min(folds, frame["run"].nunique())
    return GroupKFold(k).split(frame, groups=frame["run"])


def predict_split(train, test, names, baseline=True):
    """(model predictions, baseline predictions or None, baseline feature) on ``test`` after fitting on ``train``."""
    X, y = train[_cols(names)].to_numpy(float), train["mechanism"].to_numpy()
    model = classifier.fit(X, y, names)
    pred = model.predict(test[_cols(names)].to_numpy(float))
    if not baseline:
        return pred, None, None
    feat, rule = classifier.single_feature_rule(X, y, names, groups=train["run"].to_numpy())
    return pred, rule(test[_cols(names)].to_numpy(float)), feat


def cross_validate(frame, names=FEATURES, folds: int = 5, baseline: bool = True):
    """``frame`` with columns ``pred`` (and ``base_pred``, ``base_feature``) from grouped k-fold CV."""
    out = frame.copy()
    out["pred"], out["base_pred"], out["base_feature"] = None, None, None
    for tr, te in _folds(frame, folds):
        p, b, f = predict_split(frame.iloc[tr], frame.iloc[te], names, baseline)
        out.loc[out.index[te], "pred"] = p
        if baseline:
            out.loc[out.index[te], "base_pred"] = b
            out.loc[out.index[te], "base_feature"] = f
    return out


def bootstrap(frame, col: str, other: str | None = None, seed: int = 0):
    """(estimate, lo, hi) of accuracy of ``col`` (minus that of ``other``), percentile bootstrap over runs."""
    ok = (frame[col] == frame["mechanism"]).astype(float)
    if other is not None:
        ok = ok - (frame[other] == frame["mechanism"]).astype(float)
    per_run = ok.groupby(frame["run"]).agg(["sum", "count"])
    s, c = per_run["sum"].to_numpy(float), per_run["count"].to_numpy(float)
    est = float(s.sum() / c.sum())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(s), (BOOT, len(s)))
    boots = s[idx].sum(axis=1) / c[idx].sum(axis=1)
    return est, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def confusion(frame, col: str = "pred"):
    """(classes, counts[true, predicted])."""
    classes = sorted(frame["mechanism"].unique())
    m = np.zeros((len(classes), len(classes)), int)
    for t, p in zip(frame["mechanism"], frame[col]):
        if p in classes:
            m[classes.index(t), classes.index(p)] += 1
    return classes, m


def confusable(classes, counts, above: float = 0.15) -> list:
    """(a, b, rate) for pairs whose recordings are mistaken for each other at ≥ ``above``, worst first.

    rate = (a read as b + b read as a) / (recordings of a + of b).
    """
    out = []
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            n = counts[i].sum() + counts[j].sum()
            rate = (counts[i, j] + counts[j, i]) / n if n else 0.0
            if rate >= above:
                out.append((classes[i], classes[j], float(rate)))
    return sorted(out, key=lambda t: -t[2])


def recognition(frame, col: str = "pred") -> dict:
    """{true mechanism: (recordings read as it, its recordings)}: which classes a test set really tests.

    A held-out task's accuracy alone can hide that it kept one mechanism (all recognised: accuracy 1)
    or that one of its mechanisms is never recognised; this says which."""
    return {str(m): (int((g[col] == m).sum()), len(g)) for m, g in frame.groupby("mechanism")}


def recognised_text(recognised: dict) -> str:
    """'a 206/240; b 0/72' from :func:`recognition` (— when empty)."""
    return "; ".join(f"{m} {k}/{n}" for m, (k, n) in recognised.items()) or "—"


@dataclasses.dataclass
class Evaluation:
    """Everything the report prints (see module doc for the estimators)."""

    n_runs: int
    n_recordings: int
    classes: list
    chance: float
    model: tuple
    baseline: tuple
    margin: tuple
    baseline_features: dict
    confusion: np.ndarray
    by_units: dict
    by_sessions: dict
    by_obs_noise: dict
    held_out_tasks: dict
    ablation: dict
    shuffled: tuple
    held_out_recognised: dict = dataclasses.field(default_factory=dict)


def evaluate(frame, names=FEATURES, folds: int = 5, seed: int = 0, ablation: bool = True) -> Evaluation:
    """Grouped CV with baseline, per-setting accuracy, leave-one-task-out, ablation and the shuffled control."""
    cv = cross_validate(frame, names, folds)
    classes, conf = confusion(cv)
    shares = frame.groupby("run")["mechanism"].first().value_counts(normalize=True)

    def by(col):
        return {v: bootstrap(g, "pred") for v, g in cv.groupby(col)}

    tasks, pooled, recognised = {}, [], {}
    if frame["task"].nunique() > 1:
        for task in sorted(frame["task"].unique()):
            tr, te = frame[frame["task"] != task], frame[frame["task"] == task].copy()
            if tr["mechanism"].nunique() < 2:
                continue
            te["pred"], te["base_pred"], _ = predict_split(tr, te, names)
            tasks[task] = (bootstrap(te, "pred"), bootstrap(te, "base_pred"), bootstrap(te, "pred", "base_pred"))
            recognised[task] = recognition(te)
            pooled.append(te)
    if pooled:
        import pandas as pd

        te = pd.concat(pooled)
        tasks["all held-out tasks"] = (bootstrap(te, "pred"), bootstrap(te, "base_pred"),
                                       bootstrap(te, "pred", "base_pred"))
        recognised["all held-out tasks"] = recognition(te)
    abl = {}
    if ablation:
        for n in names:
            rest = [m for m in names if m != n]
            abl[n] = bootstrap(cross_validate(frame, rest, folds, baseline=False), "pred")
    rng = np.random.default_rng(seed)
    lab = frame.groupby("run")["mechanism"].first()
    perm = dict(zip(lab.index, rng.permutation(lab.to_numpy())))
    shuf = frame.assign(mechanism=frame["run"].map(perm))
    return Evaluation(
        n_runs=frame["run"].nunique(), n_recordings=len(frame), classes=classes, chance=float(shares.max()),
        model=bootstrap(cv, "pred"), baseline=bootstrap(cv, "base_pred"), margin=bootstrap(cv, "pred", "base_pred"),
        baseline_features=cv["base_feature"].value_counts().to_dict(), confusion=conf,
        by_units=by("units"), by_sessions=by("sessions"), by_obs_noise=by("obs_noise"), held_out_tasks=tasks,
        ablation=abl, shuffled=bootstrap(cross_validate(shuf, names, folds, baseline=False), "pred"),
        held_out_recognised=recognised)
