"""The mechanism classifier: a small random forest on drift signatures, stored as plain JSON.

What: ``fit(X, y, names)`` fills NaN features with the training median, fits
scikit-learn's ``RandomForestClassifier`` (100 trees of depth ≤ 4, ≥ 10
recordings per leaf) and returns a :class:`MechanismModel` holding the trees
as arrays; ``model.posterior(x)`` averages the leaves' class shares over the
trees, and ``model.drivers(x)`` names the features whose replacement by their
training median lowers the top class's probability most (occlusion).
``single_feature_rule`` is the baseline a classifier must beat: the best
one-feature threshold rule (a depth-limited tree on one feature, one leaf per
class), with the feature chosen on the training data only.

Why a forest: the signatures are monotone cues with heavy tails (a task that
is interpolated stops drifting altogether); on the benchmark a multinomial
logistic regression on standardised features lost to the single-feature rule
(0.59 vs 0.66 grouped-CV accuracy) where trees that cut each feature anywhere
did not. Why JSON: a model folder may come from someone else; loading it must
not run code (a pickle would), and its numbers stay readable.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..errors import UserError

MODEL_FILE = "model.json"
FORMAT = 2
TREE_KEYS = ("feature", "threshold", "left", "right", "value")


@dataclasses.dataclass
class MechanismModel:
    """Feature fill values, trees ({feature, threshold, left, right, value} arrays) and metadata."""

    features: list
    classes: list
    fill: np.ndarray
    trees: list
    meta: dict = dataclasses.field(default_factory=dict)

    def _x(self, X) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, float))
        return np.where(np.isfinite(X), X, self.fill)

    def posterior(self, X) -> np.ndarray:
        """P(class | features): the mean over trees of the reached leaf's class shares; rows sum to 1."""
        X = self._x(X)
        rows = np.arange(X.shape[0])
        out = np.zeros((X.shape[0], len(self.classes)))
        for t in self.trees:
            node = np.zeros(X.shape[0], int)
            while True:
                inner = t["left"][node] >= 0
                if not inner.any():
                    break
                f = np.where(inner, t["feature"][node], 0)
                go_left = X[rows, f] <= t["threshold"][node]
                node = np.where(inner, np.where(go_left, t["left"][node], t["right"][node]), node)
            out += t["value"][node]
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return np.asarray(self.classes, object)[np.argmax(self.posterior(X), axis=1)]

    def drivers(self, x, k: int = 3) -> list:
        """(feature, drop in the top class's probability when the feature is set to its training median)."""
        x = self._x(x)[:1]
        p = self.posterior(x)[0]
        top = int(np.argmax(p))
        X = np.repeat(x, len(self.features), axis=0)
        X[np.arange(len(self.features)), np.arange(len(self.features))] = self.fill
        drop = p[top] - self.posterior(X)[:, top]
        order = np.argsort(-drop)[:k]
        return [(self.features[i], float(drop[i])) for i in order]

    def to_json(self) -> dict:
        return {"format": FORMAT, "features": self.features, "classes": self.classes, "fill": self.fill.tolist(),
                "trees": [{k: np.asarray(t[k]).tolist() for k in TREE_KEYS} for t in self.trees], "meta": self.meta}

    def save(self, folder) -> Path:
        from ..checkpoint import atomic_write_bytes

        path = Path(folder) / MODEL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(self.to_json(), separators=(",", ":")).encode())
        return path


def _tree(d, F: int, C: int) -> dict:
    t = {"feature": np.asarray(d["feature"], int), "threshold": np.asarray(d["threshold"], float),
         "left": np.asarray(d["left"], int), "right": np.asarray(d["right"], int),
         "value": np.asarray(d["value"], float)}
    n = t["feature"].size
    if any(t[k].shape != (n,) for k in TREE_KEYS[:4]) or t["value"].shape != (n, C) or n == 0:
        raise ValueError("tree arrays of inconsistent shapes")
    inner = t["left"] >= 0
    if (np.any(t["left"][inner] >= n) or np.any(t["right"][inner] >= n) or np.any(t["right"][inner] < 0)
            or np.any(t["feature"][inner] < 0) or np.any(t["feature"][inner] >= F)
            or np.any(t["left"][inner] <= np.flatnonzero(inner)) or np.any(t["right"][inner] <= np.flatnonzero(inner))):
        raise ValueError("tree links out of range or not pointing forward")
    if not (np.all(np.isfinite(t["threshold"])) and np.all(np.isfinite(t["value"])) and np.all(t["value"] >= 0)
            and np.all(t["value"].sum(axis=1) > 0)):
        raise ValueError("non-finite thresholds or invalid leaf values")
    return t


def load(folder) -> MechanismModel:
    """The model in ``folder`` (or a model.json path); one-line UserError when missing or malformed."""
    path = Path(folder)
    path = path / MODEL_FILE if path.is_dir() else path
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"no model at {path} (train one with `flatland infer --train SWEEP_DIR --model DIR`)") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable model file ({exc})") from None
    try:
        if d.get("format") != FORMAT:
            raise ValueError(f"format {d.get('format')!r}, expected {FORMAT}")
        features, classes = list(map(str, d["features"])), list(map(str, d["classes"]))
        fill = np.asarray(d["fill"], float)
        if fill.shape != (len(features),) or not np.all(np.isfinite(fill)) or len(classes) < 2 or not d["trees"]:
            raise ValueError("fill values, classes or trees missing")
        trees = [_tree(t, len(features), len(classes)) for t in d["trees"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{path} is not a flatland mechanism model ({exc})") from None
    return MechanismModel(features, classes, fill, trees, dict(d.get("meta", {})))


def fit(X, y, names, meta=None, seed: int = 0) -> MechanismModel:
    """Fit the classifier on features X (n, F) and labels y (n,) (module doc)."""
    from sklearn.ensemble import RandomForestClassifier

    X = np.asarray(X, float)
    fill = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    Xf = np.where(np.isfinite(X), X, fill)
    y = np.asarray(list(map(str, y)))
    classes = sorted(set(y))
    if len(classes) < 2:
        raise UserError(f"training needs at least two mechanisms, got {classes}")
    rf = RandomForestClassifier(100, max_depth=4, min_samples_leaf=10, random_state=seed).fit(Xf, y)
    trees = []
    for est in rf.estimators_:
        t = est.tree_
        v = t.value[:, 0, :]
        v = v / v.sum(axis=1, keepdims=True)
        trees.append({"feature": t.feature.astype(int), "threshold": t.threshold.astype(float),
                      "left": t.children_left.astype(int), "right": t.children_right.astype(int), "value": v})
    return MechanismModel(list(names), [str(c) for c in rf.classes_], fill, trees, dict(meta or {}))


def single_feature_rule(X, y, names, groups=None):
    """The best one-feature threshold rule on (X, y): (feature name, fitted predictor function).

    The feature is the one with the best cross-validated accuracy on (X, y),
    folds grouped by ``groups`` (a run's recordings stay in one fold).
    """
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    X = np.asarray(X, float)
    y = np.asarray(list(map(str, y)))
    leaves = max(2, len(set(y)))
    best = (-1.0, 0)
    for j in range(X.shape[1]):
        col = X[:, j]
        fill = np.nanmedian(col) if np.any(np.isfinite(col)) else 0.0
        xj = np.where(np.isfinite(col), col, fill)[:, None]
        g = np.arange(len(y)) if groups is None else np.asarray(groups)
        folds = min(3, len(np.unique(g)))
        tree = DecisionTreeClassifier(max_leaf_nodes=leaves, random_state=0)
        score = (cross_val_score(tree, xj, y, cv=GroupKFold(folds), groups=g).mean() if folds >= 2
                 else tree.fit(xj, y).score(xj, y))
        if score > best[0]:
            best = (score, j)
    j = best[1]
    col = X[:, j]
    fill = np.nanmedian(col) if np.any(np.isfinite(col)) else 0.0
    tree = DecisionTreeClassifier(max_leaf_nodes=leaves, random_state=0).fit(np.where(np.isfinite(col), col, fill)[:, None], y)

    def predict(Xt):
        c = np.asarray(Xt, float)[:, j]
        return tree.predict(np.where(np.isfinite(c), c, fill)[:, None])

    return names[j], predict
