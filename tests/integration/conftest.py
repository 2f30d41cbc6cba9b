"""Fixtures of the integration tests (the servers and settings are in ``tests/conftest.py``)."""

import pytest

from tests.support.processing import Harness


@pytest.fixture
def h(settings) -> Harness:
    """The worker's processor over a fresh state on the real Redis (``tests.support.processing``
    has the harness)."""
    return Harness(settings)
