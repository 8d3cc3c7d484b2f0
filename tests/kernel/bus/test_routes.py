"""Routing: the topic cache, its invalidation, queue groups, and 10,000 subscriptions."""

from __future__ import annotations

import random

from orrery.kernel.bus import BusClient, Group, MemoryBus, MemorySubscription  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.sdk import Event, subject_matches


def _noop(event: Event) -> None:
    return None


def _subs_of(client: BusClient, topic: str) -> set[MemorySubscription]:
    found: set[MemorySubscription] = set()
    for target in client.bus.route(topic).targets:
        if isinstance(target, Group):
            found.update(target.members)
        else:
            assert isinstance(target, MemorySubscription)
            found.add(target)
    return found


async def test_cache_is_invalidated_by_subscribe_and_unsubscribe(client: BusClient) -> None:
    seen: list[str] = []
    await client.publish("orders.created", 1)  # caches "no subscribers"
    literal = client.subscribe("orders.created", lambda e: seen.append("literal"))
    await client.publish("orders.created", 2)
    wildcard = client.subscribe("orders.*", lambda e: seen.append("wildcard"))
    await client.publish("orders.created", 3)
    literal.unsubscribe()
    await client.publish("orders.created", 4)
    wildcard.unsubscribe()
    await client.publish("orders.created", 5)
    assert seen == ["literal", "literal", "wildcard", "wildcard"]


async def test_cache_stays_bounded(client: BusClient) -> None:
    bus = MemoryBus("small", route_cache_size=8)
    await bus.start()
    small = bus.client("orrery://small/p")
    seen: list[str] = []
    small.subscribe("t.*", lambda e: seen.append(e.type))
    for i in range(50):
        await small.publish(f"t.{i}")
    assert len(bus.route_cache) <= 8
    assert seen == [f"t.{i}" for i in range(50)]
    await bus.stop()


async def test_targets_come_in_subscription_order(client: BusClient) -> None:
    order: list[int] = []
    client.subscribe(">", lambda e: order.append(1))
    client.subscribe("a.b", lambda e: order.append(2))
    client.subscribe("a.*", lambda e: order.append(3))
    client.subscribe("*.b", lambda e: order.append(4))
    await client.publish("a.b")
    assert order == [1, 2, 3, 4]


async def test_group_object_is_shared_and_removed_with_last_member() -> None:
    # The memory bus's route table (on nats, queue groups are routed by the server).
    client = MemoryBus("routes").client("orrery://routes/plugin")
    first = client.subscribe("jobs.*", _noop, group="workers")
    second = client.subscribe("jobs.*", _noop, group="workers")
    other = client.subscribe("jobs.*", _noop, group="auditors")
    bus = client.bus
    targets = bus.route("jobs.run").targets
    assert len(targets) == 2
    assert all(isinstance(t, Group) for t in targets)
    first.unsubscribe()
    assert _subs_of(client, "jobs.run") == {second, other}
    second.unsubscribe()
    other.unsubscribe()
    assert bus.route("jobs.run").targets == ()
    assert bus.target_count == 0


async def test_ten_thousand_subscriptions_match_like_a_linear_scan(client: BusClient) -> None:
    rng = random.Random(7)
    services = [f"svc{i}" for i in range(400)]
    actions = ("created", "updated", "deleted", "moved")
    patterns: list[str] = []
    for i in range(10_000):
        service = rng.choice(services)
        shape = i % 5
        if shape == 0:
            patterns.append(f"{service}.{rng.choice(actions)}.v1")
        elif shape == 1:
            patterns.append(f"{service}.*.v1")
        elif shape == 2:
            patterns.append(f"{service}.>")
        elif shape == 3:
            patterns.append(f"*.{rng.choice(actions)}.*")
        else:
            patterns.append(f"{service}.{rng.choice(actions)}.*")
    subs = [client.subscribe(pattern, _noop) for pattern in patterns]
    assert client.bus.target_count == 10_000
    for _ in range(200):
        topic = f"{rng.choice(services)}.{rng.choice(actions)}.v{rng.randint(1, 2)}"
        expected = {s for s in subs if subject_matches(s.pattern, topic)}
        assert _subs_of(client, topic) == expected
        assert _subs_of(client, topic) == expected  # cached answer is the same


async def test_ten_thousand_subscriptions_deliver_to_each_match(client: BusClient) -> None:
    hits: list[str] = []
    for i in range(10_000):
        client.subscribe(f"dev{i % 1000}.temp.{i}", lambda e: hits.append(e.type))
    client.subscribe("dev7.temp.*", lambda e: hits.append("wildcard"))
    await client.publish("dev7.temp.7007")
    assert hits == ["dev7.temp.7007", "wildcard"]
