"""Bus hardening (issue 13): handler timeouts, JSON-only data, bounded subscriptions,
plugin-owned group and durable names; and the traffic counters. Both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from orrery.kernel.bus import (  # noqa: TID251 - the ban is meant for orrery.sdk
    BusClient,
    HandlerTimeout,
    InvalidData,
    InvalidGroup,
    MemoryBus,
    TooManySubscriptions,
)
from orrery.sdk import Event, PermissionDenied

MakeBus = Callable[..., MemoryBus]
DEADLINE = 20.0


class Opaque:
    """Something a plugin might put in an event by mistake."""


# -- item 10: a handler that never returns ------------------------------------------------


async def test_a_handler_that_never_returns_times_out_and_the_queue_moves_on(
    make_bus: MakeBus,
) -> None:
    bus = make_bus("n1", handler_timeout=0.05, queue_size=2, max_attempts=2, retry_backoff=0.0)
    await bus.start()
    client = bus.client("orrery://n1/plugin")
    seen: list[int] = []
    letters: list[Event] = []

    async def handler(event: Event) -> None:
        if event.data == "hang":
            await asyncio.Event().wait()  # never returns
        seen.append(event.data)

    client.subscribe("jobs.run", handler)
    client.subscribe("orrery.deadletter.>", letters.append)
    async with asyncio.timeout(DEADLINE):  # without timeouts the publishers block forever
        hung = await client.publish("jobs.run", "hang")
        for i in range(10):
            await client.publish("jobs.run", i)
        await bus.flush()
        while not letters:
            await asyncio.sleep(0.01)
    assert seen == list(range(10))
    [letter] = letters
    assert letter.type == "orrery.deadletter.jobs.run"
    assert letter.data["event"]["id"] == hung.id
    assert letter.data["attempts"] == 2
    assert letter.data["error"].startswith("HandlerTimeout")
    assert bus.traffic()["jobs"]["failed"] == 2


async def test_a_subscription_may_set_its_own_timeout(make_bus: MakeBus) -> None:
    bus = make_bus("n1", handler_timeout=None, max_attempts=1)
    await bus.start()
    client = bus.client("orrery://n1/plugin")
    letters: list[Event] = []

    async def stuck(event: Event) -> None:
        await asyncio.Event().wait()

    sub = client.subscribe("slow", stuck, timeout=0.05)
    assert sub.timeout == 0.05 and bus.handler_timeout is None
    client.subscribe("orrery.deadletter.slow", letters.append)
    async with asyncio.timeout(DEADLINE):
        await client.publish("slow", 1)
        while not letters:
            await asyncio.sleep(0.01)
    assert "did not return within 0.05s" in letters[0].data["error"]
    with pytest.raises(ValueError, match="positive"):
        client.subscribe("slow", stuck, timeout=0)


async def test_handler_timeout_error_says_what_to_do() -> None:
    event = Event(id="1", type="a.b", source="orrery://n/p", time_ns=0, data=None)
    error = HandlerTimeout("orrery://n/p", "a.*", event, 2.0)
    assert isinstance(error, TimeoutError)
    assert "handler_timeout" in str(error) and "'a.*'" in str(error)


# -- item 11: data must be JSON-able -------------------------------------------------------


async def test_non_json_data_is_refused_at_publish_naming_topic_and_type(
    client: BusClient, bus: MemoryBus
) -> None:
    seen: list[Event] = []
    client.subscribe("orders.>", seen.append)
    with pytest.raises(InvalidData) as refused:
        await client.publish("orders.created", {"id": 1, "items": [1, Opaque()]})
    error = refused.value
    assert (error.topic, error.offending, error.path) == (
        "orders.created",
        Opaque,
        "data['items'][1]",
    )
    assert "orders.created" in str(error) and "Opaque" in str(error)
    assert isinstance(error, TypeError)
    with pytest.raises(InvalidData, match="cannot be encoded as JSON"):
        await client.publish("orders.created", Opaque())
    with pytest.raises(InvalidData):
        await client.request("orders.created", {"x": object()}, timeout=1.0)
    await client.publish("orders.created", {"id": 1, "ok": [None, True, 1.5, "x"]})
    await bus.flush()
    assert [e.data for e in seen] == [{"id": 1, "ok": [None, True, 1.5, "x"]}]


# -- item 8: subscriptions per plugin are bounded -----------------------------------------


async def test_a_plugin_cannot_hold_more_subscriptions_than_the_bound(make_bus: MakeBus) -> None:
    bus = make_bus("n1", max_subscriptions=3)
    await bus.start()
    plugin = bus.client("orrery://n1/greedy", namespace="greedy")
    subs = [plugin.subscribe(f"t.{i}", lambda e: None) for i in range(3)]
    with pytest.raises(TooManySubscriptions) as refused:
        plugin.subscribe("t.3", lambda e: None)
    assert refused.value.limit == 3 and "max_subscriptions_per_plugin" in str(refused.value)
    assert len(plugin.subscriptions) == 3
    subs[0].unsubscribe()
    plugin.subscribe("t.3", lambda e: None)  # room again once one is gone
    # The bound is per plugin: another plugin, and the kernel's own client, are not held.
    bus.client("orrery://n1/other", namespace="other").subscribe("t.0", lambda e: None)
    kernel = bus.client("orrery://n1/kernel")
    for i in range(5):
        kernel.subscribe(f"k.{i}", lambda e: None)


# -- item 7: group and durable names belong to the plugin ---------------------------------


async def _count_shares(bus: MemoryBus, owner: BusClient, other: BusClient, **kw: Any) -> tuple:
    mine: list[int] = []
    theirs: list[int] = []
    owner.subscribe("shared.jobs", lambda e: mine.append(e.data), **kw)
    name = kw.get("group") or kw.get("durable")
    key = "group" if "group" in kw else "durable"
    other.subscribe("shared.jobs", lambda e: theirs.append(e.data), **{key: name})
    await bus.flush()
    publisher = bus.client("orrery://n1/publisher")
    for i in range(20):
        await publisher.publish("shared.jobs", i)
    async with asyncio.timeout(DEADLINE):
        while len(mine) < 20:
            await bus.flush()
            await asyncio.sleep(0.01)
    return sorted(mine), sorted(theirs)


@pytest.mark.parametrize("kind", ["group", "durable"])
async def test_another_plugin_reusing_a_name_does_not_take_its_deliveries(
    make_bus: MakeBus, kind: str
) -> None:
    bus = make_bus("n1")
    await bus.start()
    owner = bus.client("orrery://n1/billing", namespace="billing")
    thief = bus.client("orrery://n1/thief", namespace="thief")
    mine, theirs = await _count_shares(bus, owner, thief, **{kind: "workers"})
    assert mine == list(range(20))  # every event, not half of them
    sub = owner.subscriptions[0]
    assert getattr(sub, kind) == "billing/workers"
    assert getattr(thief.subscriptions[0], kind) == "thief/workers"


async def test_joining_another_plugins_group_needs_the_permission(make_bus: MakeBus) -> None:
    bus = make_bus("n1")
    await bus.start()
    owner = bus.client("orrery://n1/billing", namespace="billing")
    outsider = bus.client("orrery://n1/thief", namespace="thief")
    with pytest.raises(PermissionDenied, match="bus.group:billing/workers"):
        outsider.subscribe("shared.jobs", lambda e: None, group="billing:workers")
    with pytest.raises(PermissionDenied, match="bus.durable:billing/ledger"):
        outsider.subscribe("shared.jobs", lambda e: None, durable="billing:ledger")
    with pytest.raises(InvalidGroup, match="reserved"):
        outsider.subscribe("shared.jobs", lambda e: None, group="billing/workers")
    helper = bus.client(
        "orrery://n1/helper", namespace="helper", permissions=["bus.group:billing/workers"]
    )
    got: list[int] = []
    helped: list[int] = []
    owner.subscribe("shared.jobs", lambda e: got.append(e.data), group="workers")
    helper.subscribe("shared.jobs", lambda e: helped.append(e.data), group="billing:workers")
    await bus.flush()
    for i in range(20):
        await owner.publish("shared.jobs", i)
    async with asyncio.timeout(DEADLINE):
        while len(got) + len(helped) < 20:
            await bus.flush()
            await asyncio.sleep(0.01)
    assert sorted(got + helped) == list(range(20))  # one group: each event once
    assert helper.subscriptions[0].group == "billing/workers"


# -- instrumentation ------------------------------------------------------------------------


async def test_traffic_is_counted_by_topic_prefix(client: BusClient, bus: MemoryBus) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("no")

    client.subscribe("orders.*", lambda e: None)
    client.subscribe("orders.created", lambda e: None)
    client.subscribe("audit.>", broken)
    for i in range(3):
        await client.publish("orders.created", i)
    await client.publish("orders.deleted", 0)
    await client.publish("audit.login", 0)
    await bus.flush()
    traffic = bus.traffic()
    assert traffic["orders"] == {"published": 4, "delivered": 7, "failed": 0, "deadlettered": 0}
    audit = traffic["audit"]
    assert (audit["published"], audit["delivered"]) == (1, 1)
    assert (audit["failed"], audit["deadlettered"]) == (bus.max_attempts, 1)
    client.subscribe("orders.>", lambda e: None)  # a wildcard clears the cache: kept counts
    await client.publish("orders.created", 9)
    assert bus.traffic()["orders"]["published"] == 5
    assert bus.traffic()["orders"]["delivered"] == 10
