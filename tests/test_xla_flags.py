"""Importing flatland asks XLA for deterministic GPU kernels, and for 512-bit CPU vectors on AMD processors with
AVX-512 (flatland/xla_flags.py).

Without the flag, two processes running one configuration on an H200 wrote different metrics and
``--resume`` was not bit for bit; CI has no GPU, so these tests check that the flag is requested
and that a user's own choice is kept, not the GPU's behaviour itself."""
import os
import subprocess
import sys

from flatland.xla_flags import (DETERMINISTIC_GPU, WIDE_CPU_VECTORS, amd_with_avx512, request_deterministic_gpu,
                                request_wide_cpu_vectors)

ZEN5 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nflags\t\t: fpu sse2 avx2 avx512f avx512dq\n\n" \
       "processor\t: 1\nvendor_id\t: AuthenticAMD\n"


def test_the_flag_is_appended_to_the_users_other_flags():
    env = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}
    assert request_deterministic_gpu(env)
    assert env["XLA_FLAGS"] == f"--xla_cpu_multi_thread_eigen=false {DETERMINISTIC_GPU}"
    env = {}
    assert request_deterministic_gpu(env) and env["XLA_FLAGS"] == DETERMINISTIC_GPU


def test_a_users_own_setting_is_kept_even_false():
    env = {"XLA_FLAGS": "--xla_gpu_deterministic_ops=false"}
    assert not request_deterministic_gpu(env)
    assert env["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=false"


def test_importing_flatland_sets_it_before_jax_starts_and_the_run_records_it():
    code = ("import os, flatland, jax.numpy as jnp; from flatland.results import versions; "
            "assert float(jnp.ones(3).sum()) == 3.0; print(os.environ['XLA_FLAGS']); print(versions()['xla_flags'])")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    expected = " ".join([DETERMINISTIC_GPU] + ([WIDE_CPU_VECTORS] if amd_with_avx512() else []))
    assert out.stdout.split("\n")[:2] == [expected, expected]


def test_wide_vectors_only_on_amd_processors_with_avx512_and_never_over_a_users_choice():
    """512-bit vectors were measured faster on an AMD Zen 5; Intel processors may lower their clock for them,
    and a processor without AVX-512 has no such registers: nothing is added there."""
    assert amd_with_avx512(ZEN5)
    assert not amd_with_avx512(ZEN5.replace("AuthenticAMD", "GenuineIntel", 1))
    assert not amd_with_avx512(ZEN5.replace(" avx512f", "", 1))
    assert not amd_with_avx512("")
    env = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}
    assert request_wide_cpu_vectors(env, ZEN5)
    assert env["XLA_FLAGS"] == f"--xla_cpu_multi_thread_eigen=false {WIDE_CPU_VECTORS}"
    env = {"XLA_FLAGS": "--xla_cpu_prefer_vector_width=256"}
    assert not request_wide_cpu_vectors(env, ZEN5) and env["XLA_FLAGS"] == "--xla_cpu_prefer_vector_width=256"
    env = {}
    assert not request_wide_cpu_vectors(env, ZEN5.replace("AuthenticAMD", "GenuineIntel", 1)) and env == {}
