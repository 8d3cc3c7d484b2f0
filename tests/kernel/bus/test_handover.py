"""Hot swap: hold, resume, staged clients and take_over lose no event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from orrery.kernel.bus import BusClient, MemoryBus  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.sdk import Event

MakeBus = Callable[..., MemoryBus]


async def settle(rounds: int = 20) -> None:
    """Let every ready task run: a bounded number of loop turns, not a timed wait. Used
    only to show that something does *not* happen, or to let tasks reach a wait."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_hold_queues_and_resume_delivers_in_order(bus: MemoryBus) -> None:
    publisher = bus.client("orrery://test/pub")
    plugin = bus.client("orrery://test/plugin")
    sync_seen: list[int] = []
    async_seen: list[int] = []

    async def record(event: Event) -> None:
        async_seen.append(event.data)

    plugin.subscribe("h", lambda e: sync_seen.append(e.data))
    async_sub = plugin.subscribe("h", record)
    await publisher.publish("h", 0)
    await plugin.hold()
    assert plugin.held
    for i in range(1, 4):
        await publisher.publish("h", i)
    await settle()
    assert sync_seen == [0]
    plugin.resume()
    await publisher.publish("h", 4)
    await async_sub.wait_idle()
    for sub in plugin.subscriptions:
        await sub.wait_idle()
    assert sync_seen == [0, 1, 2, 3, 4]
    assert async_seen == [0, 1, 2, 3, 4]


async def test_hold_waits_for_running_handlers(bus: MemoryBus) -> None:
    publisher = bus.client("orrery://test/pub")
    plugin = bus.client("orrery://test/plugin")
    gate = asyncio.Event()
    entered = asyncio.Event()
    finished: list[int] = []

    async def slow(event: Event) -> None:
        entered.set()
        await gate.wait()
        finished.append(event.data)

    plugin.subscribe("s", slow)
    await publisher.publish("s", 1)
    await entered.wait()
    holding = asyncio.create_task(plugin.hold())
    await settle()
    assert not holding.done()  # the handler is still running
    gate.set()
    await holding
    assert finished == [1]


async def test_staged_client_takes_over_queued_events(bus: MemoryBus) -> None:
    publisher = bus.client("orrery://test/pub")
    old = bus.client("orrery://test/plugin")
    old_seen: list[int] = []
    new_seen: list[tuple[str, int]] = []
    old.subscribe("orders.*", lambda e: old_seen.append(e.data))
    old.subscribe("jobs", lambda e: old_seen.append(e.data), group="workers")
    old.subscribe("gone", lambda e: old_seen.append(e.data))
    await publisher.publish("orders.created", 0)
    await old.hold()
    for i in range(1, 4):
        await publisher.publish("orders.created", i)
    await publisher.publish("jobs", 10)
    await publisher.publish("gone", 20)
    await bus.flush()  # on nats, the group's event comes back through the server

    new = bus.client("orrery://test/plugin", staged=True)

    async def orders(event: Event) -> None:
        new_seen.append(("orders", event.data))

    new.subscribe("orders.*", orders)
    new.subscribe("jobs", lambda e: new_seen.append(("jobs", e.data)), group="workers")
    new.subscribe("fresh", lambda e: new_seen.append(("fresh", e.data)))
    await publisher.publish("fresh", 30)  # staged: not routed yet
    assert new.staged
    moved = new.take_over(old)
    assert moved == 3 + 1 + 0  # "gone" has no successor: its event is not handed over
    assert not new.staged
    await publisher.publish("orders.created", 4)
    await publisher.publish("fresh", 31)
    old.close()
    for sub in new.subscriptions:
        await sub.wait_idle()
    assert old_seen == [0]
    by_kind: dict[str, list[int]] = {}
    for kind, data in new_seen:
        by_kind.setdefault(kind, []).append(data)
    assert by_kind == {"orders": [1, 2, 3, 4], "jobs": [10], "fresh": [31]}


async def test_waiting_publisher_follows_its_event_to_the_successor(make_bus: MakeBus) -> None:
    bus = make_bus("swap", queue_size=1)
    await bus.start()
    publisher = bus.client("orrery://swap/pub")
    old = bus.client("orrery://swap/plugin")
    old.subscribe("q", lambda e: None)
    await old.hold()
    await publisher.publish("q", 1)  # fills the old queue
    waiting = asyncio.create_task(publisher.publish("q", 2))
    await settle()
    assert not waiting.done()
    new = bus.client("orrery://swap/plugin", staged=True)
    seen: list[int] = []
    sub = new.subscribe("q", lambda e: seen.append(e.data))
    assert new.take_over(old) == 1
    old.close()
    await waiting
    await sub.wait_idle()
    assert seen == [1, 2]
    await bus.stop()


async def test_a_pending_retry_is_handed_over(bus: MemoryBus) -> None:
    publisher = bus.client("orrery://test/pub")
    old = bus.client("orrery://test/plugin")

    def fail(event: Event) -> None:
        raise RuntimeError("old code is broken")

    old.subscribe("r", fail)
    await old.hold()  # nothing running yet
    old.resume()
    await publisher.publish("r", 1)  # fails inline; a retry is now pending
    await old.hold()
    new = bus.client("orrery://test/plugin", staged=True)
    seen: list[int] = []
    sub = new.subscribe("r", lambda e: seen.append(e.data))
    assert new.take_over(old) == 1
    old.close()
    await sub.wait_idle()
    assert seen == [1]


async def test_resume_after_an_abandoned_swap(bus: MemoryBus) -> None:
    publisher = bus.client("orrery://test/pub")
    old = bus.client("orrery://test/plugin")
    seen: list[int] = []
    old.subscribe("a", lambda e: seen.append(e.data))
    await old.hold()
    await publisher.publish("a", 1)
    staged = bus.client("orrery://test/plugin", staged=True)
    staged.subscribe("a", lambda e: seen.append(-e.data))
    staged.close()  # the new version failed to start
    old.resume()
    await publisher.publish("a", 2)
    await old.subscriptions[0].wait_idle()
    assert seen == [1, 2]


async def test_take_over_checks_its_argument(bus: MemoryBus, client: BusClient) -> None:
    other_bus = MemoryBus("other")
    with pytest.raises(TypeError):
        client.take_over(other_bus.client("orrery://other/p"))
    with pytest.raises(ValueError):
        client.take_over(client)
