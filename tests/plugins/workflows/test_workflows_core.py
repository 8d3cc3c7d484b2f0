"""The machinery alone, on an in-memory store and a manual clock."""

from __future__ import annotations

import pytest
from orrery.sdk.testing import ManualClock, MemoryStore
from orrery_workflows import InvalidInput
from orrery_workflows._core import PingCounter


async def test_pings_are_counted_and_stored() -> None:
    store, clock = MemoryStore(), ManualClock(start=100.0)
    counter = PingCounter(store, clock, reply="pong")
    assert (await counter.ping(None))["count"] == 1
    again = PingCounter(store, clock, reply="pong")
    await again.load()
    assert again.stats() == {"count": 1, "last": 100.0}


async def test_a_bad_name_is_refused_with_the_field() -> None:
    counter = PingCounter(MemoryStore(), ManualClock(), reply="pong")
    with pytest.raises(InvalidInput) as caught:
        await counter.ping("x" * 101)
    assert caught.value.field == "who"
    assert counter.count == 0
