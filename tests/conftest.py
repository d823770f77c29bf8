"""Shared test configuration: Hypothesis profiles ``dev`` (default) and ``ci``.

``ci`` is chosen when the environment variable CI is set (``.ci/run`` does);
both have ``deadline=None`` because a deadline would end up timing JAX
compilation. ``HYPOTHESIS_PROFILE`` overrides the choice.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=10, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def small_relu_net():
    """(loss, ctx, params) of a small corridor ReLU net (18 → 6 → 17, T = 20, P = 216) with unit 2 dead:
    small enough for a dense ``jax.hessian`` + ``eigh``, with exact zero rows from the dead unit."""
    import jax

    import flatland

    loss = flatland.assemble(strict=True).registry.create("losses", "corridor", seed=0, n_hid=6, T=20)
    p = loss.init(jax.random.key(1))
    return loss, loss.extras["relu"], dict(p, b=p["b"].at[2].set(-50.0))
