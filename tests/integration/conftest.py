"""Real servers and real processes for the multi-node and crash tests.

`nats_url` and `pg_dsn` check the servers once per session (skipped when unreachable,
a failure with CI=true); each test gets its own subject prefix, JetStream stream and
PostgreSQL database, all removed afterwards. `start_node` runs ``orrery daemon`` in a
subprocess and hands back a `Node` whose output lines can be awaited.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import nats
import pytest
from nats.js.errors import NotFoundError

from .cluster import Node, StartNode, to_toml

NATS_URL = os.environ.get("ORRERY_TEST_NATS_URL", "nats://127.0.0.1:4222")
PG_DSN = os.environ.get("ORRERY_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _unreachable(what: str, address: str, error: BaseException, fix: str) -> None:
    reason = f"{what} is not reachable at {address} ({type(error).__name__}: {error}); {fix}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _run(coro: Awaitable[Any]) -> Any:
    # A thread of its own: session fixtures may first be requested inside a running loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


async def _ping_nats() -> None:
    # A plain TCP connect first: nats-py keeps retrying a refused first connection.
    split = urlsplit(NATS_URL)
    async with asyncio.timeout(5):
        _, writer = await asyncio.open_connection(split.hostname, split.port or 4222)
        writer.close()
        conn = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
        try:
            await conn.jetstream().account_info()
        finally:
            await conn.close()


async def _ping_pg() -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    await conn.close()


@pytest.fixture(scope="session")
def nats_url() -> str:
    try:
        _run(_ping_nats())
    except Exception as e:
        _unreachable("NATS with JetStream", NATS_URL, e, "start nats-server -js")
    return NATS_URL


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    try:
        _run(_ping_pg())
    except Exception as e:
        _unreachable("PostgreSQL", PG_DSN, e, "start it or set ORRERY_TEST_PG_DSN")
    return PG_DSN


@pytest.fixture
async def nats_prefix(nats_url: str) -> AsyncIterator[str]:
    """A subject prefix (and stream ``<PREFIX>_DURABLE``) of this test only."""
    prefix = f"it{uuid.uuid4().hex[:12]}"
    yield prefix
    conn = await nats.connect(nats_url)
    try:
        await conn.jetstream().delete_stream(prefix.upper() + "_DURABLE")
    except NotFoundError:
        pass
    finally:
        await conn.close()


@pytest.fixture
async def pg_database(pg_dsn: str) -> AsyncIterator[str]:
    """The DSN of a fresh database of this test only, dropped afterwards."""
    name = f"orrery_it_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_dsn, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield pg_dsn.rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(pg_dsn, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def start_node(tmp_path: Path) -> AsyncIterator[StartNode]:
    """Start ``orrery daemon`` processes; every one still running is killed afterwards.

    ``config`` is the orrery.toml content as a mapping; the node id and ``watch =
    false`` are added under ``[kernel]``. The process's output (plugins print to it,
    and errors go there) is read line by line into `Node.lines`.
    """
    nodes: list[Node] = []

    async def start(
        node_id: str,
        config: dict[str, Any],
        plugins_dir: Path,
        *,
        env: dict[str, str] | None = None,
        state_dir: Path | None = None,
    ) -> Node:
        state = state_dir or tmp_path / f"state-{node_id}"
        kernel = {"node_id": node_id, "watch": False, **config.get("kernel", {})}
        config_path = tmp_path / f"{node_id}-{len(nodes)}.toml"
        config_path.write_text(to_toml({**config, "kernel": kernel}), encoding="utf-8")
        # The caller's ORRERY_ overrides must not leak into the daemon's configuration.
        clean = {k: v for k, v in os.environ.items() if not k.startswith("ORRERY_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orrery.kernel.cli",
            "daemon",
            "--port",
            "0",
            "--state-dir",
            str(state),
            "--config",
            str(config_path),
            "--plugins-dir",
            str(plugins_dir),
            "--no-entry-points",
            "--log-level",
            "warning",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**clean, **(env or {}), "ORRERY_TEST_NODE": node_id},
        )
        node = Node(node_id, process)
        node.start_reading()
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        await node.kill()


@pytest.fixture
def plugin_folder(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Write one plugin module into a fresh folder; returns the folder."""

    def write(name: str, source: str) -> Path:
        folder = tmp_path / f"plugins-{name}"
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.py").write_text(source, encoding="utf-8")
        return folder

    yield write
