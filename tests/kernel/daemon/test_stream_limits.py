"""The replay buffer is bounded by bytes, and streams survive events they cannot encode."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from orrery.kernel import Kernel
from orrery.kernel.daemon import Daemon

from .test_events_api import next_events, publish, sse_messages


async def _started(tmp_path: Path, **config: Any) -> Daemon:
    kernel = Kernel(state_dir=tmp_path / "s", entry_points=False, env={}, config=config)
    daemon = Daemon(kernel, port=0, grace_period=2.0)
    await daemon.start()
    return daemon


async def test_big_events_are_bounded_by_bytes_in_the_replay_buffer(tmp_path: Path) -> None:
    # 30 events of 100 kB against a 1 MB buffer (count limit 10000): at most ~10 are kept.
    daemon = await _started(tmp_path, daemon={"replay_bytes": 1 << 20})
    try:
        assert daemon.settings is not None
        headers = {"Authorization": f"Bearer {daemon.settings.token}"}
        async with aiohttp.ClientSession(base_url=daemon.url, headers=headers) as api:
            ids = [await publish(api, "big.x", "z" * 100_000) for _ in range(30)]
            async with api.get("/v1/status") as response:
                replay = (await response.json())["replay"]
            assert replay["max_bytes"] == 1 << 20 and replay["bytes"] <= 1 << 20
            assert replay["events"] <= 10
            # Resuming from the first id: a gap notice, then only what the bytes allow.
            params = {"pattern": "big.x"}
            async with api.get(
                "/v1/events/stream", params=params, headers={"Last-Event-ID": ids[0]}
            ) as r:
                out = await next_events(sse_messages(r), 1 + replay["events"])
    finally:
        await daemon.stop()
    assert out[0]["notice"]["notice"] == "gap"
    assert [e["id"] for e in out[1:]] == ids[-replay["events"] :]


async def _ws_messages(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    out = []
    async with asyncio.timeout(10):
        while len(out) < n:
            out.append(json.loads((await ws.receive()).data))
    return out


async def _publish_then_spoil(daemon: Daemon, topic: str) -> str:
    """Publish JSON data on the daemon's bus, then make it unencodable.

    A publisher that keeps mutating its data after publishing is one way a stream meets
    an event it cannot write, whatever checks publish makes.
    """
    data: dict[str, Any] = {"n": 1}
    event = await daemon.kernel.bus.publish(topic, data)
    data["spoiled"] = object()
    return event.id


async def test_sse_and_websocket_streams_survive_an_unencodable_event(daemon: Daemon,
                                                                      api: aiohttp.ClientSession
                                                                      ) -> None:
    async with api.get("/v1/events/stream", params={"pattern": "poison.>"}) as sse, \
            api.ws_connect("/v1/events/ws", params={"pattern": "poison.>"}) as ws:
        messages = sse_messages(sse)
        before = await publish(api, "poison.a", 0)
        bad = await _publish_then_spoil(daemon, "poison.b")
        after = await publish(api, "poison.c", 2)
        got = await next_events(messages, 3)
        ws_got = await _ws_messages(ws, 3)
        # Both streams are still open: a further event arrives live.
        later = await publish(api, "poison.d", 3)
        got += await next_events(messages, 1)
        ws_got += await _ws_messages(ws, 1)
    assert [e.get("id") for e in got[:1]] == [before]
    assert got[1]["notice"]["notice"] == "unencodable" and got[1]["notice"]["id"] == bad
    assert [e["id"] for e in got[2:]] == [after, later]
    assert ws_got[0]["id"] == before
    assert ws_got[1]["notice"] == "unencodable" and ws_got[1]["id"] == bad
    assert [e["id"] for e in ws_got[2:]] == [after, later]


async def _resume(api: aiohttp.ClientSession, last: str, n: int) -> tuple[list[str], str]:
    """Resume after ``last``: the ids of ``n`` replayed messages, then of one live event."""
    headers = {"Last-Event-ID": last}
    async with api.get("/v1/events/stream", params={"pattern": "resume2.>"}, headers=headers) as r:
        messages: AsyncIterator[dict[str, str]] = sse_messages(r)
        replayed = await next_events(messages, n)
        live = await publish(api, "resume2.live", 3)
        replayed += await next_events(messages, 1)
    assert replayed[-1]["id"] == live
    return [e.get("id") or e["notice"]["id"] for e in replayed], live


async def test_resume_after_an_unencodable_event_keeps_working(
    daemon: Daemon, api: aiohttp.ClientSession
) -> None:
    before = await publish(api, "resume2.a", 0)
    bad = await _publish_then_spoil(daemon, "resume2.b")
    after = await publish(api, "resume2.c", 2)
    ids, live1 = await _resume(api, before, 2)
    assert ids == [bad, after, live1]
    ids, live2 = await _resume(api, bad, 2)
    assert ids == [after, live1, live2]
    params = {"pattern": "resume2.>", "last_event_id": before}
    async with api.ws_connect("/v1/events/ws", params=params) as ws:
        got = await _ws_messages(ws, 2)
    assert [m["id"] for m in got] == [bad, after]
