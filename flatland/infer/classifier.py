"""The mechanism classifier: multinomial logistic regression on drift signatures, stored as plain JSON.

What: ``fit(X, y, names)`` standardises the features (NaN → the training
median), fits scikit-learn's ``LogisticRegression`` (L2, C = 1) and returns a
:class:`MechanismModel`; ``model.posterior(x)`` gives P(mechanism | features)
and ``model.drivers(x)`` the features that pushed the top class up most.
``single_feature_rule`` is the baseline a classifier must beat: the best
one-feature threshold rule (a depth-limited tree on one feature, one leaf per
class), with the feature chosen on the training data only.

Why JSON: a model folder may come from someone else; loading it must not run
code (a pickle would), and its numbers stay readable.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..errors import UserError

MODEL_FILE = "model.json"
FORMAT = 1


@dataclasses.dataclass
class MechanismModel:
    """Standardisation, coefficients and metadata of a fitted classifier (module doc)."""

    features: list
    classes: list
    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)

    def _z(self, X) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, float))
        X = np.where(np.isfinite(X), X, self.fill)
        return (X - self.mean) / self.scale

    def logits(self, X) -> np.ndarray:
        return self._z(X) @ self.coef.T + self.intercept

    def posterior(self, X) -> np.ndarray:
        """P(class | features), rows summing to 1."""
        a = self.logits(X)
        a = a - a.max(axis=1, keepdims=True)
        p = np.exp(a)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return np.asarray(self.classes, object)[np.argmax(self.logits(X), axis=1)]

    def drivers(self, x, k: int = 3) -> list:
        """(feature, contribution) of the k features that raised the top class's logit most over the others'."""
        z = self._z(x)[0]
        top = int(np.argmax(self.logits(x)[0]))
        others = np.delete(self.coef, top, axis=0).mean(axis=0) if len(self.classes) > 1 else 0
        c = (self.coef[top] - others) * z
        order = np.argsort(-c)[:k]
        return [(self.features[i], float(c[i])) for i in order]

    def to_json(self) -> dict:
        return {"format": FORMAT, "features": self.features, "classes": self.classes, "fill": self.fill.tolist(),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist(), "meta": self.meta}

    def save(self, folder) -> Path:
        from ..checkpoint import atomic_write_bytes

        path = Path(folder) / MODEL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(self.to_json(), indent=1).encode())
        return path


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
        m = MechanismModel(list(map(str, d["features"])), list(map(str, d["classes"])),
                           *(np.asarray(d[k], float) for k in ("fill", "mean", "scale", "coef", "intercept")),
                           meta=dict(d.get("meta", {})))
        F, C = len(m.features), len(m.classes)
        if (m.fill.shape, m.mean.shape, m.scale.shape, m.coef.shape, m.intercept.shape) != ((F,), (F,), (F,), (C, F), (C,)):
            raise ValueError("array shapes do not match the feature and class lists")
        if not all(np.all(np.isfinite(a)) for a in (m.fill, m.mean, m.scale, m.coef, m.intercept)) or np.any(m.scale <= 0):
            raise ValueError("non-finite numbers or a non-positive scale")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{path} is not a flatland mechanism model ({exc})") from None
    return m


def fit(X, y, names, meta=None, C: float = 1.0) -> MechanismModel:
    """Fit the classifier on features X (n, F) and labels y (n,)."""
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, float)
    fill = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    Xf = np.where(np.isfinite(X), X, fill)
    mean, scale = Xf.mean(axis=0), Xf.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    classes = sorted(set(map(str, y)))
    if len(classes) < 2:
        raise UserError(f"training needs at least two mechanisms, got {classes}")
    lr = LogisticRegression(C=C, max_iter=2000)
    lr.fit((Xf - mean) / scale, np.asarray(list(map(str, y))))
    coef, icpt = lr.coef_, lr.intercept_
    if len(classes) == 2:      # sklearn keeps one row for two classes; store both for a uniform softmax
        coef, icpt = np.vstack([-coef / 2, coef / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
    return MechanismModel(list(names), [str(c) for c in lr.classes_], fill, mean, scale, coef, icpt, dict(meta or {}))


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
