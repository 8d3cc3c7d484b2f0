"""Per-subscriber delivery: order, backpressure, retries, dead letters, unsubscribe, drain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from orrery.kernel.bus import BusClient, MemoryBus, MemorySubscription  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.sdk import Event, Subscription

MakeBus = Callable[..., MemoryBus]


async def settle(rounds: int = 20) -> None:
    """Let every ready task run: a bounded number of loop turns, not a timed wait. Used
    only to show that something does *not* happen, or to let tasks reach a wait."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_subscription_satisfies_the_sdk_protocol(client: BusClient) -> None:
    sub = client.subscribe("a.*", lambda e: None, group="g")
    assert isinstance(sub, Subscription)
    assert (sub.pattern, sub.group, sub.durable, sub.active) == ("a.*", "g", None, True)
    assert sub.owner == "orrery://test/plugin"
    assert sub.pending == 0
    assert "a.*" in repr(sub)


async def test_order_per_subscriber_with_sync_and_async_handlers(client: BusClient) -> None:
    sync_seen: list[int] = []
    async_seen: list[int] = []

    async def slow(event: Event) -> None:
        if event.data % 3 == 0:
            await asyncio.sleep(0)  # yield mid-handler: order must still hold
        async_seen.append(event.data)

    client.subscribe("n.*", lambda e: sync_seen.append(e.data))
    async_sub = client.subscribe("n.>", slow)
    for i in range(100):
        await client.publish("n.x", i)
    await async_sub.drain()
    assert sync_seen == list(range(100))
    assert async_seen == list(range(100))


async def test_order_kept_while_a_sync_handler_is_retried(bus: MemoryBus) -> None:
    client = bus.client("orrery://test/flaky")
    seen: list[int] = []
    failed_once: set[int] = set()

    def flaky(event: Event) -> None:
        if event.data in (3, 6) and event.data not in failed_once:
            failed_once.add(event.data)
            raise RuntimeError(f"boom {event.data}")
        seen.append(event.data)

    sub = client.subscribe("f", flaky)
    for i in range(10):
        await client.publish("f", i)
    await sub.drain()
    assert seen == list(range(10))
    assert failed_once == {3, 6}


async def test_backpressure_makes_publish_wait_and_bounds_the_queue(make_bus: MakeBus) -> None:
    bus = make_bus("bp", queue_size=2, retry_backoff=0.0)
    await bus.start()
    client = bus.client("orrery://bp/p")
    gate = asyncio.Event()
    started = asyncio.Event()
    handled: list[int] = []
    max_pending = 0

    async def slow(event: Event) -> None:
        nonlocal max_pending
        max_pending = max(max_pending, sub.pending)
        started.set()
        await gate.wait()
        handled.append(event.data)

    sub = client.subscribe("work", slow)
    await client.publish("work", 0)
    await started.wait()  # event 0 is in the handler, the queue is empty
    await client.publish("work", 1)
    await client.publish("work", 2)
    assert sub.pending == 2
    blocked = asyncio.create_task(client.publish("work", 3))
    await settle()
    assert not blocked.done()  # the queue is full: the publisher waits
    assert sub.pending == 2
    gate.set()
    await blocked
    published = 4
    for i in range(4, 60):
        await client.publish("work", i)
        published += 1
        assert sub.pending <= 2
        assert published - len(handled) <= 2 + 2  # queue + in handler + waiting publisher
    await sub.drain()
    assert handled == list(range(60))
    assert max_pending <= 2
    await bus.stop()


async def test_concurrent_waiting_publishers_keep_their_order(make_bus: MakeBus) -> None:
    bus = make_bus("fifo", queue_size=1)
    await bus.start()
    client = bus.client("orrery://fifo/p")
    gate = asyncio.Event()
    seen: list[int] = []

    async def slow(event: Event) -> None:
        await gate.wait()
        seen.append(event.data)

    sub = client.subscribe("q", slow)
    await client.publish("q", 0)
    await client.publish("q", 1)  # waits until the worker took 0 into the handler
    # Tasks take their first step in creation order, so they queue up for room in order.
    waiting = [asyncio.create_task(client.publish("q", i)) for i in range(2, 8)]
    gate.set()
    await asyncio.gather(*waiting)
    await sub.drain()
    assert seen == list(range(8))
    await bus.stop()


async def test_cancelled_waiting_publisher_releases_its_place(make_bus: MakeBus) -> None:
    bus = make_bus("cancel", queue_size=1)
    await bus.start()
    client = bus.client("orrery://cancel/p")
    gate = asyncio.Event()
    seen: list[int] = []

    async def slow(event: Event) -> None:
        await gate.wait()
        seen.append(event.data)

    sub = client.subscribe("q", slow)
    await client.publish("q", 0)
    await client.publish("q", 1)
    doomed = asyncio.create_task(client.publish("q", 2))
    kept = asyncio.create_task(client.publish("q", 3))
    await settle()
    doomed.cancel()
    gate.set()
    await kept
    await sub.drain()
    assert seen == [0, 1, 3]
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await bus.stop()


async def test_handler_publishing_to_its_own_full_queue_does_not_deadlock(
    make_bus: MakeBus,
) -> None:
    bus = make_bus("self", queue_size=1)
    await bus.start()
    client = bus.client("orrery://self/p")
    seen: list[int] = []
    all_seen = asyncio.Event()

    async def fan(event: Event) -> None:
        seen.append(event.data)
        if event.data < 3:
            for _ in range(3):
                await client.publish("loop", event.data + 1)
        if len(seen) == 1 + 3 + 9 + 27:
            all_seen.set()

    client.subscribe("loop", fan)
    await client.publish("loop", 0)
    await all_seen.wait()
    assert seen == sorted(seen)  # breadth first: each generation after the previous one
    await bus.stop()


async def test_failing_handler_is_isolated_retried_then_dead_lettered(
    bus: MemoryBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="orrery.bus")
    broken = bus.client("orrery://test/broken")
    healthy = bus.client("orrery://test/healthy")
    watcher = bus.client("orrery://test/watcher")
    attempts: list[int] = []
    received: list[int] = []
    letters: asyncio.Queue[Event] = asyncio.Queue()

    def explode(event: Event) -> None:
        attempts.append(event.data)
        raise ValueError("cannot handle")

    broken.subscribe("orders.*", explode)
    healthy.subscribe("orders.*", lambda e: received.append(e.data))
    watcher.subscribe("orrery.deadletter.>", letters.put_nowait)
    sent = await healthy.publish("orders.created", 7, key="o-7")
    letter = await letters.get()
    assert received == [7]
    assert attempts == [7, 7, 7]  # max_attempts=3
    assert letter.type == "orrery.deadletter.orders.created"
    assert letter.source == "orrery://test/bus"
    assert letter.causationid == sent.id
    assert letter.correlationid == sent.id
    assert letter.data == {
        "event": sent.to_dict(),
        "error": "ValueError: cannot handle",
        "attempts": 3,
        "subscriber": "orrery://test/broken",
        "pattern": "orders.*",
    }
    messages = [r.getMessage() for r in caplog.records if r.name == "orrery.bus"]
    assert sum("orrery://test/broken" in m and "attempt" in m for m in messages) == 3


async def test_async_handler_failure_retries_in_order(bus: MemoryBus) -> None:
    client = bus.client("orrery://test/a")
    seen: list[tuple[int, int]] = []
    tries: dict[int, int] = {}

    async def sometimes(event: Event) -> None:
        tries[event.data] = tries.get(event.data, 0) + 1
        if event.data == 1 and tries[1] < 3:
            raise RuntimeError("not yet")
        seen.append((event.data, tries[event.data]))

    sub = client.subscribe("x", sometimes)
    for i in range(4):
        await client.publish("x", i)
    await sub.drain()
    assert seen == [(0, 1), (1, 3), (2, 1), (3, 1)]


async def test_dead_letters_are_not_dead_lettered(
    bus: MemoryBus, caplog: pytest.LogCaptureFixture
) -> None:
    client = bus.client("orrery://test/dl")
    letters: list[Event] = []

    def reject(event: Event) -> None:
        letters.append(event)
        raise RuntimeError("no")

    def fail(event: Event) -> None:
        raise RuntimeError("fail")

    client.subscribe("orrery.deadletter.>", reject)
    client.subscribe("jobs", fail)
    await client.publish("jobs", 1)
    await bus.stop()
    assert [e.type for e in letters] == ["orrery.deadletter.jobs"] * 3
    assert any("dead-lettering a dead letter" in r.getMessage() for r in caplog.records)


async def test_sync_handler_returning_an_awaitable_is_awaited_in_order(client: BusClient) -> None:
    seen: list[int] = []

    async def record(value: int) -> None:
        await asyncio.sleep(0)
        seen.append(value)

    sub = client.subscribe("w", lambda e: record(e.data))
    for i in range(5):
        await client.publish("w", i)
    await sub.drain()
    assert seen == list(range(5))


async def test_callable_object_with_async_call_is_async(client: BusClient) -> None:
    class Handler:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        async def __call__(self, event: Event) -> None:
            self.seen.append(event.data)

    handler = Handler()
    sub = client.subscribe("c", handler)
    assert not sub.is_sync
    await client.publish("c", 1)
    await sub.drain()
    assert handler.seen == [1]


async def test_unsubscribe_is_immediate_and_drops_queued_events(client: BusClient) -> None:
    gate = asyncio.Event()
    seen: list[int] = []

    async def slow(event: Event) -> None:
        await gate.wait()
        seen.append(event.data)

    sub = client.subscribe("u", slow)
    for i in range(3):
        await client.publish("u", i)
    sub.unsubscribe()
    sub.unsubscribe()  # idempotent
    gate.set()
    await client.publish("u", 99)
    await settle()
    assert not sub.active
    assert sub.pending == 0
    assert seen == []
    assert sub not in client.subscriptions


async def test_handler_may_unsubscribe_itself(client: BusClient) -> None:
    seen: list[int] = []

    async def once(event: Event) -> None:
        seen.append(event.data)
        sub.unsubscribe()
        await asyncio.sleep(0)  # still runs to the end after unsubscribing
        seen.append(-event.data)

    sub = client.subscribe("once", once)
    await client.publish("once", 1)
    task = sub.worker
    assert task is not None
    await client.publish("once", 2)
    await task  # the worker ends by itself once its handler returns
    assert seen == [1, -1]


async def test_drain_delivers_queued_then_unsubscribes(client: BusClient) -> None:
    seen: list[int] = []

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(event.data)

    sub = client.subscribe("d", handler)
    for i in range(5):
        await client.publish("d", i)
    await sub.drain()
    assert seen == list(range(5))
    assert not sub.active
    await client.publish("d", 5)
    assert seen == list(range(5))


async def test_drain_from_inside_the_handler(client: BusClient) -> None:
    seen: list[int] = []
    done = asyncio.Event()

    async def handler(event: Event) -> None:
        seen.append(event.data)
        if event.data == 0:
            await sub.drain()  # must not wait for itself
        if event.data == 2:
            done.set()

    sub = client.subscribe("d", handler)
    for i in range(3):
        await client.publish("d", i)
    task = sub.worker
    assert task is not None
    await done.wait()
    await task  # the worker unsubscribes and ends once the queue is empty
    assert seen == [0, 1, 2]
    assert not sub.active


async def test_handler_raising_cancelled_error_is_a_failure_not_the_end(bus: MemoryBus) -> None:
    client = bus.client("orrery://test/c")
    seen: list[int] = []
    letters: asyncio.Queue[Event] = asyncio.Queue()
    client.subscribe("orrery.deadletter.>", letters.put_nowait)

    async def handler(event: Event) -> None:
        if event.data == 0:
            raise asyncio.CancelledError()
        seen.append(event.data)

    sub = client.subscribe("c", handler)
    await client.publish("c", 0)
    await client.publish("c", 1)
    letter = await letters.get()
    assert letter.data["error"].startswith("CancelledError")
    assert letter.data["attempts"] == 3
    await sub.drain()
    assert seen == [1]


async def test_worker_cancelled_from_outside_is_replaced(client: BusClient) -> None:
    gate = asyncio.Event()
    seen: list[int] = []

    entered = asyncio.Event()

    async def handler(event: Event) -> None:
        entered.set()
        await gate.wait()
        seen.append(event.data)

    sub = client.subscribe("w", handler)
    await client.publish("w", 0)
    await client.publish("w", 1)
    await entered.wait()
    worker = sub.worker
    assert worker is not None
    worker.cancel()  # e.g. a careless "cancel every task" at shutdown
    await asyncio.wait([worker])
    assert sub.active
    gate.set()
    await client.publish("w", 2)
    await sub.drain()
    assert seen == [1, 2]  # 0 was in the handler when its worker was cancelled


async def test_group_emptied_while_an_event_is_routed(client: BusClient) -> None:
    seen: list[str] = []
    members: list[MemorySubscription] = []
    # Routed first (older), it removes the group's only member mid-publish.
    client.subscribe(">", lambda e: members[0].unsubscribe())
    members.append(client.subscribe("g", lambda e: seen.append("member"), group="workers"))
    client.subscribe("g", lambda e: seen.append("after"))
    await client.publish("g")
    assert seen == ["after"]
