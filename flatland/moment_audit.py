"""Do the declared step moments describe the steps? A sampled audit at one point.

Why: the Rao–Blackwellised estimators (``estimators.step_moments``) measure
drift from the declared conditional mean and covariance of a step, not from
the noise the steps draw. A declaration that is false, and that the theory
reads too, makes the measurement follow the prediction: a noise model whose
steps have covariance σ²·diag(1, 2, 3) and which declares σ²I passed
``flatland check`` with ratio 1.004 (a plugin written from the README).

What: ``make_sampler`` draws ``n`` steps from one (θ, state) with independent
keys (``drift._audit`` runs it where each measurement starts), and ``compare``
compares them, along a set of directions v — the coordinate
axes and the leading eigenvectors of the declared and of the sampled
covariance — the steps' mean of v·(Δθ − m) with 0 and their variance with
vᵀCv. A direction is named when the difference exceeds ``N_SIGMA`` standard
errors of the sample (its own spread over the draws, so no Gaussian
assumption) and, for a variance, ``MATERIAL`` of the larger of the two. At the
default 2¹⁶ draws a variance error above ~4% is found (6 s.e. of a Gaussian's
sample variance is 3.3%); smaller ones pass.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

N_SIGMA = 6.0       # a difference counts beyond this many standard errors of the sample ...
MATERIAL = 0.02     # ... and, for a variance, beyond this fraction of the larger of the two variances
DRAWS = 2 ** 16     # steps drawn (fewer for large d: at most ``MAX_FLOATS`` numbers held)
MAX_FLOATS = 2 ** 24
N_DIRECTIONS = 32   # at most this many axes and eigenvectors of each covariance


def draws_for(d: int) -> int:
    """How many steps the audit draws for d parameters."""
    return int(max(1024, min(DRAWS, MAX_FLOATS // max(d, 1))))


def make_sampler(step: Callable, moments: Callable, n: int) -> Callable:
    """``sample(key, params, state, hyper) -> (Δθ − m (n, d), m (d,), C (d, d))``: n steps from one (θ, state)
    with independent keys, centred on the declared mean (vmapped, not jitted: see the return)."""
    def sample(key, params, state, hyper):
        flat = ravel_pytree(params)[0]
        m, C = moments(params, state, hyper)
        new = jax.vmap(lambda k: ravel_pytree(step(k, params, state, hyper)[0])[0])(jax.random.split(key, n))
        return new - flat - m, m, C
    return sample  # run once or twice per measurement: eager dispatch beats a compile (0.3 s each)


def _directions(C: np.ndarray, S: np.ndarray, names=None) -> list[tuple[str, np.ndarray]]:
    d = C.shape[0]
    k = min(d, N_DIRECTIONS)
    named = names is not None and len(names) == d
    out = [(f"parameter {i + 1} of {d}" + (f" ({names[i]})" if named else ""), np.eye(d)[i]) for i in range(k)]
    for label, M in (("declared", C), ("sampled", S)):
        w, V = np.linalg.eigh((M + M.T) / 2)
        out += [(f"eigenvector {j + 1} of the {label} covariance", V[:, -1 - j]) for j in range(k) if w[-1 - j] > 0]
    return out


def compare(X, m, C, params_scale: float, names=None) -> Optional[str]:
    """The largest mismatch between sampled centred steps X (n, d) and the declared mean m and covariance C,
    as one line (None: none found, or non-finite numbers: divergence, reported where it happens).
    ``params_scale`` (max |θ|) sets the round-off floor; ``names`` (one per parameter, e.g. a valley's
    variables) label the parameter axes."""
    X, m, C = np.asarray(X, float), np.asarray(m, float), np.asarray(C, float)
    if not (np.isfinite(X).all() and np.isfinite(m).all() and np.isfinite(C).all()):
        return None   # steps that overflow here are divergence, which the run reports with its step
    n = X.shape[0]
    S = X.T @ X / n
    eps = np.finfo(X.dtype).eps
    floor = 1e4 * eps * (params_scale + np.linalg.norm(m) + np.sqrt(max(np.trace(S), np.trace(C), 0.0)))
    var_floor = floor ** 2 + 1e4 * eps * max(np.linalg.norm(C, 2), np.linalg.norm(S, 2))  # round-off of either
    worst = None
    for label, v in _directions(C, S, names):
        y = X @ v
        mean, se_mean = float(y.mean()), float(y.std(ddof=1) / np.sqrt(n))
        s, c = float(np.mean(y * y)), float(v @ C @ v)
        se_var = float((y * y).std(ddof=1) / np.sqrt(n))
        found = []
        if abs(mean) > N_SIGMA * se_mean + floor:
            found.append((abs(mean) / max(np.sqrt(s), floor),
                          f"along {label} the steps' mean differs from the declared one by {mean:.3g} ± {se_mean:.2g}"))
        if abs(s - c) > N_SIGMA * se_var + var_floor and abs(s - c) > MATERIAL * max(s, c):
            found.append((abs(s - c) / max(s, c),
                          f"along {label} the steps' variance is {s:.4g} ± {se_var:.2g}, the declared {c:.4g}"))
        for size, text in found:
            if worst is None or size > 1.05 * worst[0]:   # a near tie keeps the earlier: a parameter's axis
                worst = (size, text)
    return None if worst is None else f"{worst[1]} ({n} steps drawn at one point)"
