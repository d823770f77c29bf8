"""XLA flags flatland asks for: reproducible GPU kernels, and wide vectors on AMD CPUs with AVX-512.

flatland promises that a seed fixes a run and that ``--resume`` continues it bit for
bit. On a GPU, XLA by default picks kernels whose floating-point sums may run in a
different order from one process to the next. Measured on an NVIDIA H200 with JAX
0.11.2 (2026-12-04): two processes running the same small corridor run wrote
metrics that differed in the last digits after a few hundred steps, and the resume
tests failed; with ``--xla_gpu_deterministic_ops=true`` both were identical and the
Fig 2 step ran 6% slower (24,700 against 26,300 steps/s). ``--xla_gpu_autotune_level=0``
alone did not help. CPU builds accept the flag and ignore it.

Faster CPU loops on AMD processors with AVX-512 (Zen 4 and later): XLA's CPU compiler
vectorises with 256-bit registers unless told otherwise (LLVM's default, chosen for Intel
processors that lower their clock for 512-bit work). On an AMD EPYC (Zen 5, family 26) with
JAX 0.10.2 (2026-12-04), ``--xla_cpu_prefer_vector_width=512`` drew the Fig 2 step's 18,000
fast normals (Philox's integer rounds and the quantile) in 30 µs instead of 43, ran the float64
Fig 2 step with fast draws 8% faster (3,683–3,748 against 3,424–3,475 steps/s) and the float32
one 12% faster, left the noise-free step as it was (it is bound by the matrix products), ran the
valley simulator at 20,000 chains 13% faster, and left ``flatland check`` (23/23, ~52 s) and
the test suite as they were. It is added there only: on other processors it is not measured.

The flags must be in ``XLA_FLAGS`` before JAX starts its backend, so ``import flatland``
adds them; a user's own setting of either option is kept.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["DETERMINISTIC_GPU", "WIDE_CPU_VECTORS", "request_deterministic_gpu", "request_wide_cpu_vectors"]

DETERMINISTIC_GPU = "--xla_gpu_deterministic_ops=true"
WIDE_CPU_VECTORS = "--xla_cpu_prefer_vector_width=512"


def _request(flag: str, environ: MutableMapping[str, str]) -> bool:
    """Append ``flag`` to ``XLA_FLAGS`` unless its option is set there already; True if appended."""
    flags = environ.get("XLA_FLAGS", "")
    if flag.split("=")[0].lstrip("-") in flags:
        return False
    environ["XLA_FLAGS"] = f"{flags} {flag}".strip()
    return True


def request_deterministic_gpu(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Append :data:`DETERMINISTIC_GPU` to ``XLA_FLAGS`` unless the user set that option; True if appended."""
    return _request(DETERMINISTIC_GPU, environ)


def amd_with_avx512(cpuinfo: str | None = None) -> bool:
    """Whether the first processor of ``cpuinfo`` (Linux's /proc/cpuinfo text; read when None) is an AMD one
    with AVX-512 (``avx512f`` among its flags). False where there is no such file."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read(65536)
        except OSError:
            return False
    first = cpuinfo.split("\n\n")[0]
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.split() for k, v in fields.items()}
    return fields.get("vendor_id") == ["AuthenticAMD"] and "avx512f" in fields.get("flags", [])


def request_wide_cpu_vectors(environ: MutableMapping[str, str] = os.environ, cpuinfo: str | None = None) -> bool:
    """Append :data:`WIDE_CPU_VECTORS` on an AMD processor with AVX-512 unless the user set that option."""
    return amd_with_avx512(cpuinfo) and _request(WIDE_CPU_VECTORS, environ)
