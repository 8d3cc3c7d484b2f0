"""What only the NATS backend does: events between nodes, CloudEvents on the wire,
requests answered by other nodes, dead letters seen everywhere, subscription upkeep."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import nats
import pytest
from nats.aio.msg import Msg
from orrery.kernel.bus.nats import NatsBus  # noqa: TID251
from orrery.sdk import Event, NoResponders

DEADLINE = 20.0


@pytest.fixture
async def pair(make_nats_bus: Callable[..., NatsBus]) -> tuple[NatsBus, NatsBus]:
    """Two started NATS nodes sharing a prefix."""
    one, two = make_nats_bus("n1", retry_backoff=0.0), make_nats_bus("n2", retry_backoff=0.0)
    await one.start()
    await two.start()
    return one, two


async def test_nats_events_are_cloudevents_on_the_wire(
    pair: tuple[NatsBus, NatsBus], nats_url: str
) -> None:
    one, _ = pair
    raw = await nats.connect(nats_url)
    try:
        got: asyncio.Queue[Msg] = asyncio.Queue()
        await raw.subscribe(f"{one.prefix}.orders.>", cb=got.put)
        await raw.flush()
        sent = await one.client("orrery://n1/shop").publish("orders.created", {"id": 7}, key="o7")
        async with asyncio.timeout(DEADLINE):
            msg = await got.get()
        assert msg.subject == f"{one.prefix}.orders.created"
        assert json.loads(msg.data) == sent.to_dict()

        # A foreign CloudEvents producer reaches orrery subscribers.
        seen: asyncio.Queue[Event] = asyncio.Queue()
        one.client("orrery://n1/p").subscribe("ext.*", seen.put_nowait)
        await one.flush()
        foreign = Event(id="x-1", type="ext.ping", source="urn:other", time_ns=10**18, data=[1])
        await raw.publish(f"{one.prefix}.ext.ping", foreign.to_json())
        await raw.flush()
        async with asyncio.timeout(DEADLINE):
            assert await seen.get() == foreign
    finally:
        await raw.close()


async def test_nats_requests_are_answered_by_other_nodes(pair: tuple[NatsBus, NatsBus]) -> None:
    one, two = pair
    two.client("orrery://n2/math").subscribe("math.double", lambda e: e.data * 2)

    async def explicit(event: Event) -> None:
        assert event.replyto is not None
        await two.client("orrery://n2/slow").publish(event.replyto, "explicit")

    two.client("orrery://n2/slow").subscribe("slow.op", explicit)
    two.client("orrery://n2/pool").subscribe("pool.job", lambda e: "pooled", group="pool")
    await two.flush()
    asker = one.client("orrery://n1/asker")
    assert await asker.request("math.double", 21) == 42
    assert await asker.request("slow.op") == "explicit"
    assert await asker.request("pool.job") == "pooled"
    with pytest.raises(NoResponders):
        await asker.request("nobody.anywhere")


async def test_nats_dead_letters_reach_other_nodes(pair: tuple[NatsBus, NatsBus]) -> None:
    one, two = pair
    letters: asyncio.Queue[Event] = asyncio.Queue()
    two.client("orrery://n2/watch").subscribe("orrery.deadletter.>", letters.put_nowait)
    await two.flush()

    def broken(event: Event) -> None:
        raise RuntimeError("broken")

    client = one.client("orrery://n1/broken")
    client.subscribe("work", broken)
    sent = await client.publish("work", 1)
    async with asyncio.timeout(DEADLINE):
        letter = await letters.get()
    assert letter.type == "orrery.deadletter.work"
    assert letter.data["event"]["id"] == sent.id


async def test_nats_subscriptions_are_released(pair: tuple[NatsBus, NatsBus]) -> None:
    one, _ = pair
    client = one.client("orrery://n1/p")
    before = len(one.nats.conn("publish")._subs)
    quick = client.subscribe("brief.*", lambda e: None)
    quick.unsubscribe()  # gone before the server even registered it
    kept = client.subscribe("kept.*", lambda e: None)
    group = client.subscribe("kept.*", lambda e: None, group="g")
    await one.flush()
    await one.flush()
    assert one.nats.subscriptions == {"fanout": ["kept.*"], "queues": ["kept.* g"], "durables": []}
    assert len(one.nats.conn("publish")._subs) == before + 1
    kept.unsubscribe()
    group.unsubscribe()
    await one.flush()
    await one.flush()
    assert one.nats.subscriptions == {"fanout": [], "queues": [], "durables": []}
    assert len(one.nats.conn("publish")._subs) == before
