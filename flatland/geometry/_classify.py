"""Linear classifiers on responses: session separability, per-session classifiers.

Default: a **ridge (least-squares) linear classifier** in numpy — labels ±1
regressed on the centred responses with penalty λ = α‖X_c‖²_F/m (so it is
invariant to rescaling the responses), solved in closed form in whichever of
the primal/dual is smaller. Why not scikit-learn's ``LinearSVC`` (which the
paper used)? Measured here: ~6 ms per fit from sklearn's validation overhead
and ~40 ms when the two sets are not separable (the resampling controls,
where liblinear runs to ``max_iter``) — a full measurement needs ~1,400 fits
per run, i.e. minutes per check on two shared cores, against milliseconds in
closed form. Both give a unit normal and a decision rule, which is all the
metrics use; ``kind="svc"`` selects ``LinearSVC`` (C = 1) for comparison.

* :func:`session_separability` — can a linear classifier tell two sets of
  responses of one stimulus group apart (two sessions: drift; two resamples of
  one session: the control, ≈ 0.5)? Cross-validated.
* :func:`pair_classifier` — a classifier between two stimulus groups, its
  unit normal, and its accuracy on other responses.
* :func:`relative_cross_accuracy` — (cross − ½)/(self − ½): the fraction of the
  above-chance accuracy a classifier keeps on another session's responses.
"""
from __future__ import annotations

import warnings

import numpy as np

ALPHA = 0.1


class LinearClassifier:
    """w·x + b > 0 ⇒ label 1. ``normal`` is w / ‖w‖."""

    def __init__(self, X, y, kind: str = "ridge", alpha: float = ALPHA):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        if kind == "svc":
            w, b = _svc_fit(X, y)
        elif kind == "ridge":
            w, b = _ridge_fit(X, y, alpha)
        else:
            raise ValueError(f"unknown classifier kind {kind!r} (known: ridge, svc)")
        self.w, self.b = w, b
        nw = np.linalg.norm(w)
        self.normal = w / nw if nw > 0 else w

    def predict(self, X) -> np.ndarray:
        return (np.asarray(X, dtype=float) @ self.w + self.b > 0).astype(int)

    def accuracy(self, X, y) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y)))


def _ridge_fit(X, y, alpha):
    t = np.where(y == 1, 1.0, -1.0)
    mx, mt = X.mean(axis=0), t.mean()
    Xc, tc = X - mx, t - mt
    m, n = Xc.shape
    lam = alpha * float(np.sum(Xc * Xc)) / m
    if lam == 0:  # no variation at all: no direction to prefer
        return np.zeros(n), (1e-12 if mt > 0 else -1e-12)
    if m <= n:  # dual: w = Xcᵀ (Xc Xcᵀ + λI)⁻¹ t
        w = Xc.T @ np.linalg.solve(Xc @ Xc.T + lam * np.eye(m), tc)
    else:
        w = np.linalg.solve(Xc.T @ Xc + lam * np.eye(n), Xc.T @ tc)
    return w, float(mt - mx @ w)


def _svc_fit(X, y):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    clf = LinearSVC(C=1.0, dual="auto", max_iter=5000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return clf.coef_.ravel().copy(), float(clf.intercept_[0])


def _labels(a, b):
    return np.concatenate([np.zeros(len(a), int), np.ones(len(b), int)])


def session_separability(A, B, folds: int = 4, seed: int = 0, kind: str = "ridge") -> float:
    """Cross-validated accuracy of a linear classifier separating responses A (m, n) from B (m', n).

    Stratified ``folds``-fold cross-validation (each fold holds out every
    ``folds``-th response of each set after a seeded shuffle); 0.5 is chance.
    When A and B have the same length, repeat i of A and of B are taken to be
    the same stimulus and are held out *together* (paired folds): otherwise a
    stimulus seen in one set's training data would be "recognised" in the
    other's test data, which pushes identical sets to below-chance accuracy.
    """
    A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
    rng = np.random.default_rng(seed)
    ia = rng.permutation(len(A))
    ib = ia.copy() if len(A) == len(B) else rng.permutation(len(B))
    folds = max(2, min(folds, len(A), len(B)))
    correct = 0
    for f in range(folds):
        ta, tb = ia[f::folds], ib[f::folds]
        ra, rb = np.setdiff1d(ia, ta), np.setdiff1d(ib, tb)
        clf = LinearClassifier(np.concatenate([A[ra], B[rb]]), _labels(ra, rb), kind)
        correct += clf.accuracy(np.concatenate([A[ta], B[tb]]), _labels(ta, tb)) * (len(ta) + len(tb))
    return float(correct / (len(A) + len(B)))


class PairClassifier(LinearClassifier):
    """A linear classifier between stimulus groups g (label 0) and h (label 1)."""

    def __init__(self, Xg, Xh, kind: str = "ridge"):
        super().__init__(np.concatenate([Xg, Xh]), _labels(Xg, Xh), kind)

    def group_accuracy(self, Xg, Xh) -> float:
        return self.accuracy(np.concatenate([Xg, Xh]), _labels(Xg, Xh))


def pair_classifier(Xg, Xh, kind: str = "ridge") -> PairClassifier:
    """Train a linear classifier between two groups' responses, (m, n) each."""
    return PairClassifier(np.asarray(Xg, float), np.asarray(Xh, float), kind)


def relative_cross_accuracy(cross: float, self_acc: float) -> float:
    """(cross − ½) / (self − ½); NaN when the classifier is at chance on its own session."""
    return float((cross - 0.5) / (self_acc - 0.5)) if self_acc > 0.5 else float("nan")
