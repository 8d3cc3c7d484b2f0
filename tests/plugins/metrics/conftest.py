"""Fixtures for the metrics plugin tests."""

from __future__ import annotations

import pytest
from orrery.sdk.testing import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """A clock that only moves when the test says so."""
    return ManualClock()
