"""The HTTP listener's limits, attacked with raw sockets: half-open connections that send
nothing or drip headers are closed, idle kept-alive ones too, and connections over the
limit are refused with a clear 503 instead of piling up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from orrery.kernel import Kernel
from orrery.kernel.daemon import Daemon

from .test_events_api import next_events, publish, sse_messages

HEALTH = b"GET /v1/health HTTP/1.1\r\nHost: test\r\n\r\n"


@pytest.fixture
async def limited(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Daemon]:
    section: dict[str, Any] = {"header_timeout": 0.3, "idle_timeout": 0.5, "max_connections": 50}
    section.update(getattr(request, "param", {}))
    kernel = Kernel(state_dir=tmp_path / "s", entry_points=False, env={},
                    config={"daemon": section})
    daemon = Daemon(kernel, port=0, grace_period=2.0)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


async def _connect(daemon: Daemon) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = daemon.url.removeprefix("http://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (bounded wait)."""
    async with asyncio.timeout(20):
        return await reader.read()


async def _status(api: aiohttp.ClientSession) -> dict[str, Any]:
    async with api.get("/v1/status") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


def _api(daemon: Daemon) -> aiohttp.ClientSession:
    assert daemon.settings is not None
    # One kept-alive connection (limit=1), so the test knows how many it holds itself.
    return aiohttp.ClientSession(
        base_url=daemon.url,
        headers={"Authorization": f"Bearer {daemon.settings.token}"},
        connector=aiohttp.TCPConnector(limit=1),
    )


async def test_a_connection_that_sends_nothing_is_closed_with_408(limited: Daemon) -> None:
    reader, writer = await _connect(limited)
    answer = await _until_closed(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"header_timeout" in answer


async def test_headers_dripped_too_slowly_are_cut_off(limited: Daemon) -> None:
    reader, writer = await _connect(limited)
    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: te")  # ...and never the rest
    await writer.drain()
    answer = await _until_closed(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408")


async def test_an_idle_kept_alive_connection_is_closed(limited: Daemon) -> None:
    reader, writer = await _connect(limited)
    writer.write(HEALTH)
    await writer.drain()
    answer = await _until_closed(reader)  # answered, then closed once idle
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.count(b"HTTP/1.1") == 1


async def test_a_second_request_that_never_completes_is_cut_off(limited: Daemon) -> None:
    reader, writer = await _connect(limited)
    writer.write(HEALTH)
    await writer.drain()
    async with asyncio.timeout(20):
        first = await reader.readuntil(b'{"status":"ok"}')
    writer.write(b"GET /v1/health HTTP/1.1\r\n")  # kept alive, but the headers never end
    await writer.drain()
    answer = await _until_closed(reader)
    writer.close()
    assert first.startswith(b"HTTP/1.1 200")
    assert answer.startswith(b"HTTP/1.1 408")


async def test_kept_alive_requests_and_streams_outlive_the_header_timeout(limited: Daemon) -> None:
    async with _api(limited) as api:
        async with api.get("/v1/events/stream", params={"pattern": "slow.>"}) as sse:
            messages = sse_messages(sse)
            await asyncio.sleep(0.6)  # longer than header_timeout: the stream must stay open
            async with aiohttp.ClientSession(
                base_url=limited.url, headers=dict(api.headers)
            ) as other:
                await publish(other, "slow.x", 1)
            got = await next_events(messages, 1)
    assert got[0]["data"] == 1


@pytest.mark.parametrize("limited", [{"max_connections": 3, "header_timeout": 30}],
                         indirect=True)
async def test_connections_over_the_limit_get_a_clear_503(limited: Daemon) -> None:
    half_open = [await _connect(limited) for _ in range(2)]
    async with _api(limited) as api:
        status = await _status(api)  # the third connection
        assert status["connections"]["open"] == 3
        reader, writer = await _connect(limited)
        answer = await _until_closed(reader)
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert b"Retry-After: 1" in head
        error = json.loads(body)
        assert error["status"] == 503 and "max_connections" in error["error"]
        # Freeing a slot lets the next client in.
        for _, w in half_open:
            w.close()
        async with asyncio.timeout(20):
            while (await _status(api))["connections"]["open"] > 1:
                await asyncio.sleep(0.01)  # polling the daemon's own count, not a guess
        reader, writer = await _connect(limited)
        writer.write(HEALTH)
        await writer.drain()
        answer = await _until_closed(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200")
        assert (await _status(api))["connections"]["refused"] == 1
