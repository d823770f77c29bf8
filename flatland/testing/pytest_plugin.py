"""pytest plugin (entry point ``pytest11``): fixtures for flatland plugin authors.

``flatland_assembly`` is a fresh plugin assembly per test; ``flatland_check``
is :func:`flatland.testing.check_component`. Imports are lazy so that merely
having flatland installed costs a pytest run nothing.
"""
import pytest


@pytest.fixture
def flatland_assembly():
    """A fresh plugin assembly (registry of every installed component)."""
    from flatland import assemble

    return assemble()


@pytest.fixture
def flatland_check():
    """The conformance kit: ``flatland_check(entry, **options)``."""
    from flatland.testing import check_component

    return check_component
