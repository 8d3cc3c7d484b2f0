"""``POST /v1/events`` and the SSE / WebSocket streams, with Last-Event-ID resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from orrery.kernel.daemon import Daemon


async def publish(api: aiohttp.ClientSession, topic: str, data: Any = None, **extra: Any) -> str:
    async with api.post("/v1/events", json={"topic": topic, "data": data, **extra}) as response:
        assert response.status == 202, await response.text()
        ack = await response.json()
    assert ack["type"] == topic
    return str(ack["id"])


async def sse_messages(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, str]]:
    """Parse the SSE stream into messages (fields by name)."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.lstrip(" ")


async def next_events(messages: AsyncIterator[dict[str, str]], n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        async for message in messages:
            if message.get("event") == "notice":
                out.append({"notice": json.loads(message["data"])})
            else:
                event = json.loads(message["data"])
                assert message["id"] == event["id"]
                out.append(event)
            if len(out) == n:
                break
    return out


async def test_publish_reaches_subscribers_and_answers_the_event(
    api: aiohttp.ClientSession, sink_file: object, daemon: Daemon
) -> None:
    seen: list[Any] = []
    sub = daemon.kernel.bus.subscribe("orders.*", lambda e: seen.append((e.data, e.key, e.headers)))
    try:
        await publish(api, "orders.created", {"n": 1}, key="o-1", headers={"tenant": "acme"})
    finally:
        sub.unsubscribe()
    assert seen == [({"n": 1}, "o-1", {"tenant": "acme"})]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"topic": "a..b"}, 422, "topic"),
        ({"topic": "a.*"}, 422, "topic"),
        ({"topic": ""}, 422, "topic"),
        ({"topic": 7}, 422, "topic"),
        ({"data": 1}, 422, "topic"),
        ({"topic": "a", "headers": {"Bad Name": "x"}}, 422, "headers"),
        ({"topic": "a", "headers": {"ok": 1}}, 422, "headers.ok"),
        ({"topic": "a", "key": 5}, 422, "key"),
        ({"topic": "a", "extra": 1}, 422, "extra"),
        ([], 422, "body"),
    ],
)
async def test_bad_events_are_4xx_naming_the_field(
    api: aiohttp.ClientSession, body: object, status: int, field: str
) -> None:
    async with api.post("/v1/events", json=body) as response:
        assert response.status == status
        answer = await response.json()
    assert answer["field"] == field, answer
    assert answer["error"]


@pytest.mark.parametrize("raw", [b"", b"   ", b"{not json", b'{"topic": "a"', b"[" * 100_000])
async def test_malformed_bodies_are_400(api: aiohttp.ClientSession, raw: bytes) -> None:
    async with api.post("/v1/events", data=raw) as response:
        assert response.status in (400, 413, 422)
        assert (await response.json())["status"] == response.status


async def test_a_body_over_the_limit_is_413(api: aiohttp.ClientSession) -> None:
    big = {"topic": "a", "data": "x" * (128 * 1024)}
    async with api.post("/v1/events", json=big) as response:
        assert response.status == 413
        assert "--max-body-size" in (await response.json())["error"]


async def test_sse_streams_matching_events_only(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/events/stream", params={"pattern": "greet.*"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        messages = sse_messages(response)
        await publish(api, "other.topic", 0)
        await publish(api, "greet.hello", {"who": "a"})
        await publish(api, "greet.hello.deep", 1)
        await publish(api, "greet.bye", {"who": "b"})
        events = await next_events(messages, 2)
    assert [(e["type"], e["data"]) for e in events] == [
        ("greet.hello", {"who": "a"}), ("greet.bye", {"who": "b"}),
    ]
    assert events[0]["specversion"] == "1.0"


async def test_websocket_streams_matching_events_only(api: aiohttp.ClientSession) -> None:
    async with api.ws_connect("/v1/events/ws", params={"pattern": "ws.>"}) as ws:
        await publish(api, "nope", 0)
        await publish(api, "ws.one", 1)
        await publish(api, "ws.two.deep", 2)
        received = []
        async with asyncio.timeout(10):
            while len(received) < 2:
                received.append(json.loads((await ws.receive()).data))
    assert [(e["type"], e["data"]) for e in received] == [("ws.one", 1), ("ws.two.deep", 2)]


async def test_sse_resumes_after_last_event_id(api: aiohttp.ClientSession) -> None:
    ids = [await publish(api, "resume.x", i) for i in range(5)]
    headers = {"Last-Event-ID": ids[1]}
    async with api.get("/v1/events/stream", params={"pattern": "resume.>"}, headers=headers) as r:
        messages = sse_messages(r)
        replayed = await next_events(messages, 3)
        await publish(api, "resume.x", 5)
        live = await next_events(messages, 1)
    assert [e["data"] for e in replayed] == [2, 3, 4]
    assert live[0]["data"] == 5


async def test_websocket_resumes_with_the_query_parameter(api: aiohttp.ClientSession) -> None:
    ids = [await publish(api, "wsr.x", i) for i in range(3)]
    params = {"pattern": "wsr.x", "last_event_id": ids[0]}
    async with api.ws_connect("/v1/events/ws", params=params) as ws:
        async with asyncio.timeout(10):
            got = [json.loads((await ws.receive()).data)["data"] for _ in range(2)]
    assert got == [1, 2]


async def test_a_resume_point_older_than_the_buffer_reports_a_gap(
    api: aiohttp.ClientSession,
) -> None:
    first = await publish(api, "gap.x", 0)
    for i in range(1, 60):  # the test daemon keeps 50 events
        await publish(api, "gap.x", i)
    headers = {"Last-Event-ID": first}
    async with api.get("/v1/events/stream", params={"pattern": "gap.x"}, headers=headers) as r:
        messages = sse_messages(r)
        out = await next_events(messages, 2)
    assert out[0]["notice"]["notice"] == "gap"
    assert out[1]["data"] >= 10


@pytest.mark.parametrize("path", ["/v1/events/stream", "/v1/events/ws"])
@pytest.mark.parametrize("pattern", ["a..b", "a.>.b", ""])
async def test_bad_patterns_are_422(api: aiohttp.ClientSession, path: str, pattern: str) -> None:
    async with api.get(path, params={"pattern": pattern}) as response:
        assert response.status == 422
        assert (await response.json())["field"] == "pattern"


async def test_ws_endpoint_without_upgrade_is_400(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/events/ws") as response:
        assert response.status == 400


async def test_streams_end_with_a_notice_when_the_daemon_stops(
    daemon: Daemon, api: aiohttp.ClientSession
) -> None:
    async with api.get("/v1/events/stream") as response:
        messages = sse_messages(response)
        stopping = asyncio.create_task(daemon.stop())
        out = await next_events(messages, 1)
        await stopping
    assert out[0]["notice"]["notice"] == "closed"
