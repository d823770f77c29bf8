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


@pytest.fixture
def with_plugin(monkeypatch):
    """``add(hook, name, factory, summary)``: for this test, every ``flatland.assemble()`` (the CLI's too)
    also registers one component through ``hook`` (e.g. ``"flatland_noise_models"``), as an installed
    plugin would."""
    import types

    import flatland
    import flatland.assembly as assembly
    import flatland.cli.list_cmd as list_cmd

    orig = assembly.assemble
    extra = []

    def patched(*a, **k):
        return orig(*a, **{**k, "extra": list(k.get("extra", ())) + extra})

    def add(hook, name, factory, summary):
        register = flatland.hookimpl(lambda register: register(name, factory, summary))
        extra.append((name, types.SimpleNamespace(**{hook: register})))
        monkeypatch.setattr(assembly, "assemble", patched)
        monkeypatch.setattr(list_cmd, "assemble", patched)   # imported by name there
    return add


@pytest.fixture(scope="session")
def silent_update_noise():
    """Update noise that declares C = 0 to the theory (so zero drift is predicted) while its steps, and the
    param_cov the estimator reads, are update noise's: a negative case for zero-prediction verdicts."""
    import flatland

    class Silent(type(flatland.assemble().registry.create("noise", "update"))):
        name = "update-declared-silent"

        def covariance(self, ctx):
            return 0 * ctx.eye
    return Silent
