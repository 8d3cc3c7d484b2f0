"""MemoryBus lifecycle: start, stop draining queued work, refusal afterwards."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from orrery.kernel.bus import BusClosed, MemoryBus  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.sdk import BusError, Event

MakeBus = Callable[..., MemoryBus]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"node_id": ""},
        {"node_id": "n", "queue_size": 0},
        {"node_id": "n", "max_attempts": 0},
        {"node_id": "n", "retry_backoff": -1.0},
        {"node_id": "n", "route_cache_size": 0},
    ],
)
def test_invalid_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MemoryBus(**kwargs)  # type: ignore[arg-type]


async def test_publish_before_start_is_refused(make_bus: MakeBus) -> None:
    bus = make_bus("early")
    client = bus.client("orrery://early/kernel")
    client.subscribe("a", lambda e: None)  # wiring before start is fine
    with pytest.raises(BusClosed) as info:
        await client.publish("a")
    assert "start()" in str(info.value)
    assert info.value.target is client
    await bus.start()
    await client.publish("a")
    await bus.stop()


async def test_stop_delivers_queued_events_and_their_follow_ups(make_bus: MakeBus) -> None:
    bus = make_bus("drain")
    await bus.start()
    client = bus.client("orrery://drain/p")
    seen: list[str] = []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(f"{event.type}:{event.data}")
        if event.type == "work":
            await client.publish("follow", event.data)

    async def follow(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(f"{event.type}:{event.data}")

    client.subscribe("work", slow)
    client.subscribe("follow", follow)
    for i in range(10):
        await client.publish("work", i)
    await bus.stop()
    assert [s for s in seen if s.startswith("work")] == [f"work:{i}" for i in range(10)]
    assert [s for s in seen if s.startswith("follow")] == [f"follow:{i}" for i in range(10)]
    assert bus.state == "stopped"
    assert bus.idle
    assert bus.subscriptions == ()


async def test_after_stop_everything_is_refused(make_bus: MakeBus) -> None:
    bus = make_bus("done")
    await bus.start()
    client = bus.client("orrery://done/kernel")
    await bus.stop()
    await bus.stop()  # idempotent
    with pytest.raises(BusClosed) as info:
        await client.publish("a")
    assert "stopped" in str(info.value)
    assert isinstance(info.value, BusError)
    with pytest.raises(BusClosed):
        await client.request("a")
    with pytest.raises(BusClosed):
        client.subscribe("a", print)
    with pytest.raises(BusClosed):
        await bus.start()
    with pytest.raises(BusClosed):
        await bus.client("orrery://done/late").publish("a")


async def test_stop_gives_up_after_timeout(
    make_bus: MakeBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="orrery.bus")
    bus = make_bus("stuck", queue_size=4)
    await bus.start()
    client = bus.client("orrery://stuck/p")
    cancelled = asyncio.Event()
    never = asyncio.Event()

    async def stuck(event: Event) -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client.subscribe("s", stuck)
    for i in range(3):
        await client.publish("s", i)
    await bus.stop(timeout=0.01)
    assert cancelled.is_set()
    assert bus.idle
    assert any("dropping 2 queued event(s)" in r.getMessage() for r in caplog.records)


async def test_stop_cancels_pending_requests(make_bus: MakeBus) -> None:
    bus = make_bus("req")
    await bus.start()
    client = bus.client("orrery://req/p")
    never = asyncio.Event()
    entered = asyncio.Event()

    async def stuck(event: Event) -> None:
        entered.set()
        await never.wait()

    client.subscribe("s", stuck)
    pending = asyncio.create_task(client.request("s", timeout=60))
    await entered.wait()  # the request is out and being handled
    await bus.stop(timeout=0.01)
    with pytest.raises(asyncio.CancelledError):
        await pending


async def test_async_context_manager(make_bus: MakeBus) -> None:
    async with make_bus("ctx") as bus:
        client = bus.client("orrery://ctx/kernel")
        seen: list[Event] = []
        client.subscribe(">", seen.append)
        await client.publish("x.y")
        assert len(seen) == 1
        assert "ctx" in repr(bus)
    assert bus.state == "stopped"


async def test_handler_may_stop_the_bus(make_bus: MakeBus) -> None:
    bus = make_bus("self-stop")
    await bus.start()
    client = bus.client("orrery://self-stop/p")
    stopped = asyncio.Event()

    async def shutdown(event: Event) -> None:
        await bus.stop(timeout=1.0)
        stopped.set()

    client.subscribe("shutdown", shutdown)
    await client.publish("shutdown")
    await stopped.wait()
    assert bus.state == "stopped"
