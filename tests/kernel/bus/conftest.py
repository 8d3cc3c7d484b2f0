"""Fixtures for the bus tests, which run against both backends.

``backend`` is ``memory`` (with SQLite storage, for durable subscriptions) or ``nats``
(a real NATS server with JetStream; ``-k nats`` selects those). Each NATS test gets its
own subject prefix and JetStream stream, deleted after the test. When the server is
unreachable the NATS tests are skipped, except with CI=true where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
from nats.js.errors import NotFoundError
from orrery.kernel.bus import BusClient, MemoryBus  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.kernel.bus.nats import NatsBus  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.kernel.storage import SQLiteStorage, Storage  # noqa: TID251

NATS_URL = os.environ.get("ORRERY_TEST_NATS_URL", "nats://127.0.0.1:4222")

MakeBus = Callable[..., MemoryBus]


async def _ping_nats(url: str) -> None:
    # A plain TCP connect first: nats-py keeps retrying a refused first connection.
    split = urlsplit(url)
    async with asyncio.timeout(5):
        _, writer = await asyncio.open_connection(split.hostname, split.port or 4222)
        writer.close()
        conn = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        try:
            await conn.jetstream().account_info()
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The NATS server's URL, once it answered (with JetStream) in this session."""
    try:
        # A thread of its own: the fixture may first be requested inside a running loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, _ping_nats(NATS_URL)).result()
    except Exception as e:
        reason = (
            f"NATS with JetStream is not reachable at {NATS_URL} ({type(e).__name__}: {e}); "
            f"start it (nats-server -js) or point ORRERY_TEST_NATS_URL at a server"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return NATS_URL


@pytest.fixture(params=["memory", "nats"])
def backend(request: pytest.FixtureRequest) -> str:
    """The bus backend under test; ``-k nats`` or ``-k memory`` selects one."""
    return str(request.param)


async def _buses(backend: str, tmp_path: Path, url: str) -> AsyncIterator[MakeBus]:
    made: list[MemoryBus] = []
    prefix = f"t{uuid.uuid4().hex[:12]}"
    stream = prefix.upper()
    storage: Storage | None = None
    if backend == "memory":
        storage = SQLiteStorage(tmp_path / "bus.db")
        await storage.open()

    def make(node_id: str = "test", **options: Any) -> MemoryBus:
        bus: MemoryBus
        if backend == "nats":
            options.setdefault("ack_wait", 1.0)
            bus = NatsBus(node_id, url=url, prefix=prefix, stream=stream, **options)
        else:
            bus = MemoryBus(node_id, storage=storage, **options)
        made.append(bus)
        return bus

    yield make
    for bus in reversed(made):
        await bus.stop(timeout=1.0)
    if storage is not None:
        await storage.close()
    if backend == "nats":
        conn = await nats.connect(url)
        try:
            await conn.jetstream().delete_stream(stream)
        except NotFoundError:
            pass
        finally:
            await conn.close()


@pytest.fixture
async def make_bus(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[MakeBus]:
    """Makes buses (not started) of the backend under test; all share one node's state
    (storage for the memory bus, subject prefix and stream for NATS) so a second bus
    made in a test is "the same node after a restart" or "another node"."""
    url = request.getfixturevalue("nats_url") if backend == "nats" else ""
    async for make in _buses(backend, tmp_path, url):
        yield make


@pytest.fixture
async def make_nats_bus(nats_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., NatsBus]]:
    """Like `make_bus`, for tests about the nats backend only."""
    async for make in _buses("nats", tmp_path, nats_url):

        def make_nats(node_id: str = "test", make: MakeBus = make, **options: Any) -> NatsBus:
            bus = make(node_id, **options)
            assert isinstance(bus, NatsBus)
            return bus

        yield make_nats


@pytest.fixture
async def bus(make_bus: MakeBus) -> MemoryBus:
    # No backoff: retries are exercised for behaviour, not timing.
    started = make_bus("test", retry_backoff=0.0)
    await started.start()
    return started


@pytest.fixture
def client(bus: MemoryBus) -> BusClient:
    return bus.client("orrery://test/plugin")
