"""Reproducible XLA on GPUs: one configuration writes the same bytes in every process.

flatland promises that a seed fixes a run and that ``--resume`` continues it bit for
bit. On a GPU, XLA by default picks kernels whose floating-point sums may run in a
different order from one process to the next. Measured on an NVIDIA H200 with JAX
0.11.2 (2026-12-04): two processes running the same small corridor run wrote
metrics that differed in the last digits after a few hundred steps, and the resume
tests failed; with ``--xla_gpu_deterministic_ops=true`` both were identical and the
Fig 2 step ran 6% slower (24,700 against 26,300 steps/s). ``--xla_gpu_autotune_level=0``
alone did not help. CPU builds accept the flag and ignore it.

The flag must be in ``XLA_FLAGS`` before JAX starts its backend, so ``import flatland``
adds it; a user's own ``xla_gpu_deterministic_ops`` setting (true or false) is kept.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["DETERMINISTIC_GPU", "request_deterministic_gpu"]

DETERMINISTIC_GPU = "--xla_gpu_deterministic_ops=true"


def request_deterministic_gpu(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Append :data:`DETERMINISTIC_GPU` to ``XLA_FLAGS`` unless the user set that option; True if appended."""
    flags = environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" in flags:
        return False
    environ["XLA_FLAGS"] = f"{flags} {DETERMINISTIC_GPU}".strip()
    return True
