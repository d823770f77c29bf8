"""Reading recorded responses from an .npz file, with one-line errors for malformed files.

Layout: an array ``responses`` of shape (sessions, stimulus groups, repeats,
neurons) — or a file holding exactly one array, taken as the responses. An
optional ``resample`` array of the same shape is an independent set of passes
(otherwise even/odd repeats are the two halves), and an optional ``readout``
(sessions, classes, neurons) holds read-out weights.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

from ..errors import UserError
from .analysis import validate_responses


def load_responses(path: str, key: str = "responses"):
    """(responses, resample or None, readout or None) from ``path``; UserError if malformed."""
    if not os.path.isfile(path):
        raise UserError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise UserError(f"{path} is not a readable .npz file (expected numpy.savez format without pickled objects)") from None
    if not arrays:
        raise UserError(f"{path} holds no arrays")
    if key in arrays:
        R = arrays[key]
    elif len(arrays) == 1:
        R = next(iter(arrays.values()))
    else:
        raise UserError(f"{path} has no array {key!r} (it has: {', '.join(sorted(arrays))}); use --key NAME")
    R = validate_responses(R, f"{path}:{key}")
    B = arrays.get("resample")
    if B is not None:
        B = validate_responses(B, f"{path}:resample")
        if B.shape != R.shape:
            raise UserError(f"{path}: resample has shape {B.shape}, responses {R.shape}; they must match")
    W = arrays.get("readout")
    if W is not None:
        W = np.asarray(W, dtype=float)
        if W.ndim != 3 or W.shape[0] != R.shape[0] or W.shape[2] != R.shape[3] or not np.all(np.isfinite(W)):
            raise UserError(f"{path}: readout must be finite, shaped (sessions={R.shape[0]}, classes, "
                            f"neurons={R.shape[3]}), got {W.shape}")
    return R, B, W
