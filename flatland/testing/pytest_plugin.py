"""pytest plugin (entry point ``pytest11``): fixtures for flatland plugin authors."""
import pytest


@pytest.fixture
def flatland_assembly():
    """A fresh plugin assembly (registry of every installed component)."""
    from flatland import assemble

    return assemble()
