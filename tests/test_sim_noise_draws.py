"""The ``draws`` options of update and gradient noise ("fast", "float32"): cheaper draws, same law, dtype kept."""
import jax
import jax.numpy as jnp
import pytest

import flatland
from flatland.testing import check_noise

REG = flatland.assemble(entry_points=[]).registry


@pytest.mark.parametrize("draws", ["float32", "fast"])
@pytest.mark.parametrize("name", ["update", "gradient"])
def test_cheaper_draws_keep_dtype_and_variance(name, draws):
    noise = REG.create("noise", name, draws=draws)
    check_noise(noise)
    params = {"w": jnp.zeros((200_000,), dtype=jnp.float64)}
    hyper = {"sigma": jnp.asarray(0.5)}
    if name == "update":
        out = noise.perturb_params(jax.random.PRNGKey(1), params, hyper)["w"]
    else:
        out = noise.perturb_grad(jax.random.PRNGKey(1), params, hyper)["w"]
    assert out.dtype == jnp.float64
    # sample variance of 2e5 normals: s.e. of var/σ² is sqrt(2/n) ≈ 0.0032; allow 4 s.e.
    assert abs(float(jnp.var(out)) / 0.25 - 1) < 4 * (2 / out.size) ** 0.5
    assert abs(float(jnp.mean(out))) / 0.5 < 4 / out.size ** 0.5


def test_bad_draws_option_is_clear():
    with pytest.raises(ValueError, match="draws must be 'exact', 'fast' or 'float32'"):
        REG.create("noise", "gradient", draws="float16")
