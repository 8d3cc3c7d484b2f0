"""Fixtures for the memory bus tests: a started bus, stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from orrery.kernel.bus import BusClient, MemoryBus  # noqa: TID251 - the ban is meant for orrery.sdk


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    # No backoff: retries are exercised for behaviour, not timing.
    memory = MemoryBus("test", retry_backoff=0.0)
    await memory.start()
    yield memory
    await memory.stop()


@pytest.fixture
def client(bus: MemoryBus) -> BusClient:
    return bus.client("orrery://test/plugin")
