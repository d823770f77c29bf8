"""XLA's on-disk compilation cache, turned on the one way flatland does it (``flatland check``, sweep workers).

A cold run spends most of its time compiling, so compiled loops are kept on disk between
processes. JAX (0.10) writes a cache entry with a plain file write, not write-then-rename: a
process that reads an entry while another is still writing it, or an entry left short by a
killed process, reads as a truncated stream. JAX then warns ("Error reading persistent
compilation cache entry …: incomplete or truncated stream") and compiles afresh, so the only
harm is that line on the user's terminal (seen 2026-12-05 in a two-worker local sweep under load:
one run in three of the Ctrl-C test printed it). flatland silences that one warning, and no other
cache error, where it turns the cache on. An entry left short stays short (JAX never rewrites an
existing entry): that function is compiled again each time, which costs time, not results.
"""
from __future__ import annotations

import warnings

# JAX uses this prefix for every failed read (permissions, a version mismatch, …): only the truncated ones,
# which are expected, are silenced
TRUNCATED_ENTRY = r"Error reading persistent compilation cache entry .*truncated"


def use_compilation_cache(where, min_compile_secs: float) -> None:
    """Keep compiled XLA programs in the folder ``where`` when they took ≥ ``min_compile_secs`` to compile."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(where))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_secs))
    warnings.filterwarnings("ignore", message=TRUNCATED_ENTRY, category=UserWarning)
