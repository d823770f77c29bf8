"""flatland's on-disk XLA cache: an entry left short (a killed writer, or one read while being written) costs a
recompile, never a warning on the user's terminal."""
import subprocess
import sys

PROGRAM = """
import sys, warnings
warnings.simplefilter("default")
import flatland  # its XLA flags are part of the cache key: both processes must set them
import jax, jax.numpy as jnp
if sys.argv[2] == "flatland":
    from flatland.compile_cache import use_compilation_cache
    use_compilation_cache(sys.argv[1], 0.0)
else:
    jax.config.update("jax_compilation_cache_dir", sys.argv[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
print(float(jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.0)(2.0)))
"""


def _run(cache, how):
    return subprocess.run([sys.executable, "-c", PROGRAM, str(cache), how], capture_output=True, text=True,
                          timeout=120)


def test_a_truncated_cache_entry_is_recompiled_without_a_warning(tmp_path):
    first = _run(tmp_path, "flatland")
    assert first.returncode == 0, first.stderr
    entries = [p for p in tmp_path.iterdir() if p.is_file() and p.stat().st_size > 100]
    assert entries, list(tmp_path.iterdir())
    for p in entries:                                   # what a killed writer leaves
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    plain, ours = _run(tmp_path, "jax"), _run(tmp_path, "flatland")
    assert "truncated" in plain.stderr                  # the control: JAX's own warning
    assert ours.returncode == 0 and ours.stdout == first.stdout and "cache" not in ours.stderr, ours.stderr


def test_other_cache_errors_are_still_shown():
    import warnings

    from flatland.compile_cache import TRUNCATED_ENTRY

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=TRUNCATED_ENTRY, category=UserWarning)
        warnings.warn("Error reading persistent compilation cache entry for 'f': error: Error -5 while "
                      "decompressing data: incomplete or truncated stream", UserWarning)
        warnings.warn("Error reading persistent compilation cache entry for 'f': PermissionError: denied", UserWarning)
    assert [str(w.message) for w in seen] == ["Error reading persistent compilation cache entry for 'f': "
                                              "PermissionError: denied"]
