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
