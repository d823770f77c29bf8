"""Atomic checkpoints and files: write to a temporary file, fsync, then ``os.replace``.

What: ``atomic_write_bytes``/``atomic_write_text`` and ``save``/``load`` of a
checkpoint — named pytrees of arrays (params, learner state, PRNG key data) plus
a JSON metadata dict — in one ``.npz``. A reader sees either the previous
checkpoint or the new one, never a torn file, even if the process is killed
with SIGKILL mid-write (``os.replace`` is atomic on POSIX within a folder).

Why the metadata: resuming bit-for-bit needs the step reached, the chunk
boundaries, the base key and how many bytes of the metrics CSV belong to the
checkpointed state (rows written after it are truncated on resume).
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import jax


TEMP_SUFFIX = ".tmp"
_UMASK = os.umask(0)
os.umask(_UMASK)


def remove_stale_temps(folder) -> int:
    """Delete the temporary files of atomic writes that a killed process left under ``folder``; how many.

    Call it only while holding the folder's lock (no live writer can own them then).
    """
    n = 0
    for p in Path(folder).rglob(f".*{TEMP_SUFFIX}"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + fsync + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would make it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save(path, trees: dict, meta: dict) -> None:
    """Save named pytrees (leaves → arrays ``name/i``) and JSON ``meta`` atomically."""
    arrays = {}
    for name, tree in trees.items():
        for i, leaf in enumerate(jax.tree_util.tree_leaves(tree)):
            arrays[f"{name}/{i}"] = np.asarray(leaf)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load(path, templates: dict) -> tuple[dict, dict]:
    """Load a checkpoint; each tree takes the structure of ``templates[name]``.

    Leaf shapes and dtypes must match the template (a checkpoint from another
    configuration is refused with ValueError).
    """
    with np.load(path) as z:
        meta = json.loads(bytes(z["__meta__"]).decode())
        out = {}
        for name, tmpl in templates.items():
            leaves, treedef = jax.tree_util.tree_flatten(tmpl)
            new = []
            for i, leaf in enumerate(leaves):
                a = z[f"{name}/{i}"]
                if a.shape != np.shape(leaf) or a.dtype != np.asarray(leaf).dtype:
                    raise ValueError(f"checkpoint {name}/{i}: {a.shape} {a.dtype} does not match "
                                     f"{np.shape(leaf)} {np.asarray(leaf).dtype}")
                new.append(a)
            out[name] = jax.tree_util.tree_unflatten(treedef, new)
    return out, meta
