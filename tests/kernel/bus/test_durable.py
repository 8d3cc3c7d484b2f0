"""Durable subscriptions: at-least-once delivery, acknowledgement, redelivery after a
restart, competing members, hot swap; on the memory bus (journal) and on NATS
(JetStream)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from orrery.kernel.bus import (  # noqa: TID251 - the ban is meant for orrery.sdk
    InvalidDurable,
    MemoryBus,
)
from orrery.kernel.bus.nats import NatsBus, consumer_name, covers  # noqa: TID251
from orrery.kernel.storage import SQLiteStorage  # noqa: TID251
from orrery.sdk import Event

MakeBus = Callable[..., MemoryBus]
DEADLINE = 20.0


class Collector:
    """Records handled event data; `wait_for` awaits a count with a deadline."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.seen.append(event.data)
        self._changed.set()

    async def wait_for(self, count: int) -> list[int]:
        async with asyncio.timeout(DEADLINE):
            while len(self.seen) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.seen


async def test_durable_delivers_in_order_and_acknowledges(make_bus: MakeBus) -> None:
    bus = make_bus("n1")
    await bus.start()
    client = bus.client("orrery://n1/billing")
    got = Collector()
    sub = client.subscribe("orders.*", got, durable="billing")
    assert sub.feed is not None
    assert sub.durable == "billing" and sub.pattern == "orders.*"
    await bus.flush()
    for i in range(50):
        await client.publish("orders.created", i)
    client.subscribe("other", lambda e: None)  # unrelated topics are not kept
    await client.publish("other", -1)
    assert await got.wait_for(50) == list(range(50))
    await bus.flush()
    assert bus.durables["billing"]["in_flight"] == 0


async def test_restart_resumes_after_the_last_acknowledged_event(make_bus: MakeBus) -> None:
    bus = make_bus("n1")
    await bus.start()
    client = bus.client("orrery://n1/p")
    release = asyncio.Event()
    entered = asyncio.Event()
    first: list[int] = []

    async def slow(event: Event) -> None:
        first.append(event.data)
        if event.data == 3:
            entered.set()
            await release.wait()  # never set: the "crash" happens while 3 is handled

    client.subscribe("jobs", slow, durable="worker")
    await bus.flush()
    for i in range(6):
        await client.publish("jobs", i)
    async with asyncio.timeout(DEADLINE):
        await entered.wait()
    await bus.stop(timeout=0.01)  # 3 is in the handler, 4 and 5 queued: none acknowledged
    assert first == [0, 1, 2, 3]

    again = make_bus("n1")
    await again.start()
    got = Collector()
    again.client("orrery://n1/p").subscribe("jobs", got, durable="worker")
    # 0-2 were acknowledged; 3-5 come again, in order.
    assert await got.wait_for(3) == [3, 4, 5]


async def test_a_failing_handler_is_dead_lettered_then_acknowledged(make_bus: MakeBus) -> None:
    bus = make_bus("n1", retry_backoff=0.0)
    await bus.start()
    client = bus.client("orrery://n1/p")
    letters = Collector()
    client.subscribe("orrery.deadletter.>", lambda e: letters(Event(**{**_fields(e), "data": 0})))
    ok = Collector()

    def picky(event: Event) -> None:
        if event.data == 1:
            raise ValueError("cannot handle 1")
        ok(event)

    client.subscribe("work", picky, durable="picky")
    await bus.flush()
    for i in range(3):
        await client.publish("work", i)
    assert await ok.wait_for(2) == [0, 2]
    await letters.wait_for(1)
    await bus.flush()
    assert bus.durables["picky"]["in_flight"] == 0


def _fields(event: Event) -> dict[str, object]:
    return {f: getattr(event, f) for f in event.__struct_fields__}


async def test_members_of_a_durable_group_compete(make_bus: MakeBus) -> None:
    bus = make_bus("n1")
    await bus.start()
    client = bus.client("orrery://n1/p")
    a, b, both = Collector(), Collector(), Collector()

    def member(own: Collector) -> Callable[[Event], None]:
        def handle(event: Event) -> None:
            own(event)
            both(event)

        return handle

    client.subscribe("tasks.*", member(a), durable="tasks", group="workers")
    client.subscribe("tasks.*", member(b), durable="tasks", group="workers")
    await bus.flush()
    for i in range(40):
        await client.publish("tasks.run", i)
    await both.wait_for(40)
    assert sorted(a.seen + b.seen) == list(range(40))
    assert a.seen and b.seen


async def test_durable_name_keeps_one_pattern_and_must_be_valid(make_bus: MakeBus) -> None:
    bus = make_bus("n1")
    await bus.start()
    client = bus.client("orrery://n1/p")
    client.subscribe("a.*", lambda e: None, durable="keeper")
    with pytest.raises(InvalidDurable) as info:
        client.subscribe("b.*", lambda e: None, durable="keeper")
    assert "a.*" in str(info.value)
    for bad in ("", "has space", "a*", 3):
        with pytest.raises(InvalidDurable):
            client.subscribe("a.*", lambda e: None, durable=bad)  # type: ignore[arg-type]


async def test_hot_swap_hands_unacknowledged_events_over(make_bus: MakeBus) -> None:
    bus = make_bus("n1")
    await bus.start()
    publisher = bus.client("orrery://n1/pub")
    old = bus.client("orrery://n1/plugin")
    old_seen = Collector()
    old.subscribe("swap", old_seen, durable="swapper")
    await bus.flush()
    await publisher.publish("swap", 0)
    await old_seen.wait_for(1)
    await old.hold()
    for i in range(1, 4):
        await publisher.publish("swap", i)
    await bus.flush()
    new = bus.client("orrery://n1/plugin", staged=True)
    new_seen = Collector()
    new.subscribe("swap", new_seen, durable="swapper")
    new.take_over(old)
    old.close()
    await publisher.publish("swap", 4)
    assert await new_seen.wait_for(4) == [1, 2, 3, 4]
    assert old_seen.seen == [0]


async def test_nats_durable_keeps_events_published_while_no_node_runs(
    make_nats_bus: MakeBus,
) -> None:
    make_bus = make_nats_bus  # a memory bus has no publisher while its process is down
    consumer = make_bus("n1")
    await consumer.start()
    consumer.client("orrery://n1/p").subscribe("audit.>", lambda e: None, durable="audit")
    await consumer.flush()
    await consumer.stop()
    publisher = make_bus("n2")
    await publisher.start()
    for i in range(5):
        await publisher.client("orrery://n2/p").publish("audit.login", i)
    await publisher.flush()
    back = make_bus("n1")
    await back.start()
    got = Collector()
    back.client("orrery://n1/p").subscribe("audit.>", got, durable="audit")
    assert await got.wait_for(5) == list(range(5))


def test_subject_helpers() -> None:
    assert covers("a.>", "a.b.c") and covers("a.*", "a.b") and covers(">", "x")
    assert not covers("a.*", "a.b.c") and not covers("a.b", "a.*") and not covers("a.>", "a")
    assert covers("a.*.c", "a.b.c") and not covers("a.*", "a.>")
    assert consumer_name("billing") == "billing"
    assert consumer_name("a.b") != consumer_name("a_b")
    assert "." not in consumer_name("a.b")


async def test_nats_bus_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        NatsBus("n", prefix="a b")
    with pytest.raises(ValueError):
        NatsBus("n", ack_wait=0)


async def test_nats_clean_stop_hands_unfinished_events_to_another_node(
    make_nats_bus: MakeBus,
) -> None:
    make_bus = make_nats_bus
    # A long ack_wait: only the hand-back on stop can get the events to the other node
    # within the test's deadline.
    first, second = make_bus("n1", ack_wait=600.0), make_bus("n2", ack_wait=600.0)
    await first.start()
    await second.start()
    entered = asyncio.Event()

    async def stuck(event: Event) -> None:
        entered.set()
        await asyncio.Event().wait()

    first.client("orrery://n1/p").subscribe("hand.*", stuck, durable="hand")
    await first.flush()
    publisher = second.client("orrery://n2/pub")
    await publisher.publish("hand.over", 0)
    async with asyncio.timeout(DEADLINE):
        await entered.wait()
    got = Collector()
    second.client("orrery://n2/p").subscribe("hand.*", got, durable="hand")
    await second.flush()
    await first.stop(timeout=0.01)
    assert await got.wait_for(1) == [0]


async def test_durables_with_overlapping_patterns_share_the_stream(make_bus: MakeBus) -> None:
    bus = make_bus("n1")
    await bus.start()
    client = bus.client("orrery://n1/p")
    a, b, c = Collector(), Collector(), Collector()
    client.subscribe("b.c", c, durable="narrow")
    client.subscribe("a.*", a, durable="wide-a")
    client.subscribe("b.>", b, durable="wide-b")
    await bus.flush()
    await client.publish("a.x", 1)
    await client.publish("b.c", 2)
    await client.publish("b.c.d", 3)
    assert await a.wait_for(1) == [1]
    assert await b.wait_for(2) == [2, 3]
    assert await c.wait_for(1) == [2]
    if isinstance(bus, NatsBus):
        conn = bus.nats.conn("work")
        info = await conn.jetstream().stream_info(bus.stream)
        assert sorted(info.config.subjects or []) == [f"{bus.prefix}.a.*", f"{bus.prefix}.b.>"]


async def test_what_a_leaving_member_left_unfinished_goes_to_the_others(
    make_bus: MakeBus,
) -> None:
    bus = make_bus("n1")
    await bus.start()
    client = bus.client("orrery://n1/p")
    entered = asyncio.Event()
    stuck_on: list[int] = []

    async def stuck(event: Event) -> None:
        stuck_on.append(event.data)
        entered.set()
        await asyncio.Event().wait()  # never finishes: it is unsubscribed meanwhile

    quitter = client.subscribe("q.*", stuck, durable="shared", group="g")
    await bus.flush()
    await client.publish("q.x", 0)
    async with asyncio.timeout(DEADLINE):
        await entered.wait()
    stayer = Collector()
    client.subscribe("q.*", stayer, durable="shared", group="g")
    quitter.unsubscribe()
    for i in range(1, 4):
        await client.publish("q.x", i)
    assert sorted(await stayer.wait_for(4)) == [0, 1, 2, 3]
    assert stuck_on == [0]
    await bus.flush()
    assert bus.durables["shared"]["in_flight"] == 0
    if "position" in bus.durables["shared"]:
        assert bus.durables["shared"]["position"] == 4


async def test_acknowledged_events_are_deleted_from_the_journal(tmp_path: Path) -> None:
    # The memory bus keeps a durable subscription's events in the journal; what is
    # acknowledged is deleted as the position advances, so disk use is the backlog.
    async def kept(storage: SQLiteStorage) -> list[int]:
        journal = storage.journal("orrery.bus")
        return [e.version async for e in journal.read("durable.billing")]

    async with SQLiteStorage(tmp_path / "bus.db") as storage:
        bus = MemoryBus("n1", storage=storage)
        await bus.start()
        client = bus.client("orrery://n1/billing")
        got = Collector()
        client.subscribe("orders.*", got, durable="billing")
        await bus.flush()
        for i in range(2500):
            await client.publish("orders.created", i)
        assert await got.wait_for(2500) == list(range(2500))
        await bus.flush()
        assert len(await kept(storage)) < 1500
        await bus.stop(timeout=1.0)
        assert await kept(storage) == [2500]  # the latest stays: it carries the version

        again = MemoryBus("n1", storage=storage)
        await again.start()
        more = Collector()
        again.client("orrery://n1/billing").subscribe("orders.*", more, durable="billing")
        await again.flush()
        await again.client("orrery://n1/billing").publish("orders.created", 2500)
        assert await more.wait_for(1) == [2500]  # nothing old comes back
        await again.stop(timeout=1.0)
