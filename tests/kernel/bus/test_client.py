"""BusClient: publishing, validation, queue groups, request/reply, causation, close."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest
from orrery.kernel.bus import (  # noqa: TID251 - the ban is meant for orrery.sdk
    BusClient,
    BusClosed,
    DurableNotSupported,
    InvalidGroup,
    InvalidHeaders,
    MemoryBus,
)
from orrery.sdk import Bus, BusError, Event, InvalidTopic, NoResponders, RequestTimeout


async def test_client_satisfies_the_sdk_protocol(client: BusClient) -> None:
    assert isinstance(client, Bus)


async def test_publish_returns_a_full_event(client: BusClient) -> None:
    got: list[Event] = []
    client.subscribe("greet.hello", got.append)
    event = await client.publish("greet.hello", {"who": "ada"}, key="k1", headers={"trace": "t"})
    assert got == [event]
    assert event.type == "greet.hello"
    assert event.source == "orrery://test/plugin"
    assert event.subject == "k1"
    assert event.data == {"who": "ada"}
    assert event.headers == {"trace": "t"}
    assert event.causationid is None and event.correlationid is None
    assert event.time_ns > 0
    second = await client.publish("greet.hello")
    assert second.id > event.id  # time-ordered ids


@pytest.mark.parametrize("topic", ["", "a..b", "a.*", "a.>", ".a", "a b", "a.b*"])
async def test_invalid_publish_topic_names_the_topic(client: BusClient, topic: str) -> None:
    with pytest.raises(InvalidTopic) as info:
        await client.publish(topic)
    assert info.value.topic == topic
    assert repr(topic) in str(info.value)
    with pytest.raises(InvalidTopic):
        await client.request(topic)


@pytest.mark.parametrize("pattern", ["", "a.>.b", "a..b", "a*", "> "])
async def test_invalid_pattern_names_the_pattern(client: BusClient, pattern: str) -> None:
    with pytest.raises(InvalidTopic) as info:
        client.subscribe(pattern, print)
    assert info.value.topic == pattern


@pytest.mark.parametrize(
    "headers", [{"Bad": "x"}, {"id": "x"}, {"ok": 1}, {"waytoolongheadername123": "x"}]
)
async def test_invalid_headers(client: BusClient, headers: dict[str, object]) -> None:
    with pytest.raises(InvalidHeaders) as info:
        await client.publish("a", headers=headers)  # type: ignore[arg-type]
    assert info.value.headers == headers
    assert isinstance(info.value, BusError) and isinstance(info.value, ValueError)


async def test_empty_headers_become_none(client: BusClient) -> None:
    event = await client.publish("a", headers={})
    assert event.headers is None


async def test_subscribe_argument_errors(client: BusClient) -> None:
    bare = MemoryBus("bare")  # no storage: no journal to keep durable events in
    with pytest.raises(DurableNotSupported) as info:
        bare.client("orrery://bare/p").subscribe("a", print, durable="orders")
    assert info.value.durable == "orders"
    assert "journal" in str(info.value)
    for group in ("", "a b", 3):
        with pytest.raises(InvalidGroup):
            client.subscribe("a", print, group=group)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.subscribe("a", "not callable")  # type: ignore[arg-type]


async def test_queue_group_delivers_each_event_once(bus: MemoryBus, client: BusClient) -> None:
    counts: Counter[str] = Counter()
    seen: list[int] = []

    def worker(name: str) -> Callable[[Event], None]:
        def handle(event: Event) -> None:
            counts.update([name])
            seen.append(event.data)

        return handle

    for name in ("w1", "w2", "w3"):
        client.subscribe("jobs.*", worker(name), group="workers")
    fanout: list[int] = []
    client.subscribe("jobs.*", lambda e: fanout.append(e.data))
    audit: list[int] = []
    client.subscribe("jobs.*", lambda e: audit.append(e.data), group="audit")
    for i in range(30):
        await client.publish("jobs.run", i)
    await bus.flush()  # on nats, groups are served through the server
    assert sorted(seen) == list(range(30))
    assert counts == {"w1": 10, "w2": 10, "w3": 10}
    assert fanout == list(range(30))
    assert audit == list(range(30))


async def test_queue_group_of_async_members(bus: MemoryBus, client: BusClient) -> None:
    seen: list[int] = []

    async def work(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(event.data)

    members = [client.subscribe("jobs", work, group="g") for _ in range(4)]
    for i in range(100):
        await client.publish("jobs", i)
    await bus.flush()
    for member in members:
        await member.drain()
    assert sorted(seen) == list(range(100))


async def test_request_reply_sync_and_async(client: BusClient) -> None:
    client.subscribe("math.double", lambda e: e.data * 2)

    async def greet(event: Event) -> dict[str, str]:
        await asyncio.sleep(0)
        return {"text": f"hello, {event.data['who']}"}

    client.subscribe("greet.hello", greet)
    assert await client.request("math.double", 21) == 42
    assert await client.request("greet.hello", {"who": "ada"}) == {"text": "hello, ada"}


async def test_request_takes_the_first_non_none_reply(client: BusClient) -> None:
    client.subscribe("q", lambda e: None)  # an observer, not a responder
    client.subscribe("q", lambda e: "first")
    client.subscribe("q", lambda e: "second")
    assert await client.request("q") == "first"


async def test_request_to_a_group_is_answered_once(client: BusClient) -> None:
    calls: list[str] = []

    def responder(name: str) -> Callable[[Event], str]:
        def handle(event: Event) -> str:
            calls.append(name)
            return name

        return handle

    for name in ("a", "b"):
        client.subscribe("svc", responder(name), group="svc")
    assert [await client.request("svc") for _ in range(4)] == ["a", "b", "a", "b"]
    assert calls == ["a", "b", "a", "b"]


async def test_explicit_reply_published_on_replyto(bus: MemoryBus, client: BusClient) -> None:
    responder = bus.client("orrery://test/responder")

    async def answer_later(event: Event) -> None:
        assert event.replyto is not None
        await responder.publish(event.replyto, {"ok": True})

    responder.subscribe("slow.op", answer_later)
    assert await client.request("slow.op") == {"ok": True}


async def test_no_responders_and_timeout(client: BusClient) -> None:
    with pytest.raises(NoResponders) as nobody:
        await client.request("nobody.home")
    assert nobody.value.topic == "nobody.home"
    never = asyncio.Event()

    async def stuck(event: Event) -> str:
        await never.wait()
        return "late"

    client.subscribe("stuck", stuck)
    with pytest.raises(RequestTimeout) as late:
        await client.request("stuck", timeout=0.01)
    assert (late.value.topic, late.value.timeout) == ("stuck", 0.01)
    assert not client.bus.open_requests  # the inbox is released
    never.set()  # the late reply is ignored


async def test_reply_without_replyto_is_ignored(client: BusClient) -> None:
    client.subscribe("x", lambda e: "unused")
    event = await client.publish("x")
    assert event.replyto is None


async def test_causation_and_correlation_across_handlers(bus: MemoryBus) -> None:
    client = bus.client("orrery://test/chain")
    hops: dict[str, Event] = {}
    done = asyncio.Event()

    async def first(event: Event) -> None:
        hops["first"] = event
        await asyncio.sleep(0)  # the context survives an await
        await client.publish("chain.second")

    def second(event: Event) -> None:
        hops["second"] = event
        # A sync handler can only publish from a task; the task inherits the cause.
        asyncio.get_running_loop().create_task(client.publish("chain.third"))

    def third(event: Event) -> None:
        hops["third"] = event
        done.set()

    client.subscribe("chain.first", first)
    client.subscribe("chain.second", second)
    client.subscribe("chain.third", third)
    origin = await client.publish("chain.first")
    await done.wait()
    assert hops["first"] == origin
    assert hops["second"].causationid == origin.id
    assert hops["second"].correlationid == origin.id
    assert hops["third"].causationid == hops["second"].id
    assert hops["third"].correlationid == origin.id
    unrelated = await client.publish("chain.other")  # the publisher's context is clean
    assert unrelated.causationid is None


async def test_request_carries_causation(client: BusClient) -> None:
    client.subscribe("inner", lambda e: e.causationid)

    async def outer(event: Event) -> object:
        return await client.request("inner")

    client.subscribe("outer", outer)
    sent: list[Event] = []
    client.subscribe("outer", sent.append)
    reply = await client.request("outer")
    assert reply == sent[0].id


async def test_close_releases_subscriptions_and_requests(bus: MemoryBus) -> None:
    plugin = bus.client("orrery://test/plugin")
    other = bus.client("orrery://test/other")
    seen: list[int] = []
    plugin.subscribe("a", lambda e: seen.append(e.data))
    plugin.subscribe("b.*", lambda e: seen.append(e.data), group="g")
    other.subscribe("never", lambda e: None)
    never = asyncio.Event()
    entered = asyncio.Event()

    async def stuck(event: Event) -> None:
        entered.set()
        await never.wait()

    other.subscribe("slow", stuck)
    pending = asyncio.create_task(plugin.request("slow"))
    await entered.wait()  # the request is out and being handled
    plugin.close()
    plugin.close()  # idempotent
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert plugin.subscriptions == ()
    assert plugin.closed
    await other.publish("a", 1)
    await other.publish("b.c", 2)
    assert seen == []
    with pytest.raises(BusClosed) as info:
        await plugin.publish("a")
    assert "closed" in str(info.value)
    with pytest.raises(BusClosed):
        plugin.subscribe("a", print)
    assert plugin not in bus.clients
    assert len(other.subscriptions) == 2
    never.set()


@pytest.mark.parametrize("name", ["-lead", "trail-", "dou--ble", "Up-per", "a_b", "x-" + "y" * 63])
async def test_malformed_dashed_header_names_are_refused(client: BusClient, name: str) -> None:
    with pytest.raises(InvalidHeaders, match="lower-case words joined by single dashes"):
        await client.publish("a", headers={name: "x"})


async def test_protocol_headers_with_dashes_reach_the_handler_and_round_trip(
    client: BusClient,
) -> None:
    """DESIGN.md section 11 names ``orrery-idempotency-key``: it must cross the bus and
    the CloudEvents JSON form intact."""
    seen: list[Event] = []
    client.subscribe("steps.run", seen.append)
    headers = {"orrery-idempotency-key": "run1:step", "orrery-attempt": "2"}
    event = await client.publish("steps.run", headers=headers)
    assert [e.headers for e in seen] == [headers]  # idle sync handlers run inline
    # The NATS wire form of an event with headers is its CloudEvents JSON.
    assert Event.from_json(event.to_json()).headers == headers
