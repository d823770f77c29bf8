"""GPU runs are reproducible: importing flatland asks XLA for deterministic GPU kernels (flatland/xla_flags.py).

Without the flag, two processes running one configuration on an H200 wrote different metrics and
``--resume`` was not bit for bit; CI has no GPU, so these tests check that the flag is requested
and that a user's own choice is kept, not the GPU's behaviour itself."""
import os
import subprocess
import sys

from flatland.xla_flags import DETERMINISTIC_GPU, request_deterministic_gpu


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
    assert out.stdout.split("\n")[:2] == [DETERMINISTIC_GPU, DETERMINISTIC_GPU]
