"""Connecting to NATS, with failures turned into one error that says what to check."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client
from orrery.kernel.bus.errors import BusUnavailable

from ._fastpath import DirectClient

__all__ = ["connect", "describe_url"]

log = logging.getLogger("orrery.bus.nats")


def describe_url(url: str) -> str:
    """``host:port`` of each server in ``url`` (comma-separated), never credentials."""
    parts = []
    for one in url.split(","):
        try:
            split = urlsplit(one.strip() if "://" in one else f"nats://{one.strip()}")
            parts.append(f"{split.hostname or '127.0.0.1'}:{split.port or 4222}")
        except ValueError:
            parts.append("<unparseable URL>")
    return ",".join(parts)


async def connect(url: str, *, name: str, no_echo: bool, timeout: float) -> Client:
    """A connected client; raises `BusUnavailable` naming the server and what to check.

    Once connected, the client reconnects by itself for as long as it takes (a NATS
    restart must not take the kernel down); the first connection gets one chance.
    """
    address = describe_url(url)
    await _probe(url, address, timeout)

    async def on_error(error: Exception) -> None:
        log.warning("NATS connection %s to %s: %s: %s", name, address, type(error).__name__, error)

    client: list[Client] = []

    async def on_disconnected() -> None:
        if client and client[0].is_closed:
            return  # our own close(), not a lost connection
        log.warning("NATS connection %s to %s lost; reconnecting", name, address)

    async def on_reconnected() -> None:
        log.info("NATS connection %s to %s restored", name, address)

    options: dict[str, Any] = {
        "servers": [s.strip() for s in url.split(",")],
        "name": name,
        "no_echo": no_echo,
        "connect_timeout": timeout,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "error_cb": on_error,
        "disconnected_cb": on_disconnected,
        "reconnected_cb": on_reconnected,
    }
    try:
        async with asyncio.timeout(timeout + 1.0):
            # Our subclass: subscriptions can bypass per-message Msg objects and queues.
            conn = DirectClient()
            client.append(conn)
            await conn.connect(**options)
            return conn
    except (OSError, TimeoutError, nats.errors.Error) as e:
        raise _unavailable(address, e, timeout) from e


async def _probe(url: str, address: str, timeout: float) -> None:
    """Fail fast when no server listens: nats-py would keep retrying a refused first
    connection instead of saying so."""
    last: BaseException | None = None
    for one in url.split(","):
        try:
            split = urlsplit(one.strip() if "://" in one else f"nats://{one.strip()}")
            host, port = split.hostname or "127.0.0.1", split.port or 4222
        except ValueError as e:
            raise BusUnavailable(
                "NATS",
                one,
                f"malformed URL ({e})",
                'Set bus.url in orrery.toml like "nats://host:4222"',
            ) from e
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as e:
            last = e
            continue
        writer.close()
        return
    assert last is not None
    raise _unavailable(address, last, timeout) from last


def _unavailable(address: str, error: BaseException, timeout: float) -> BusUnavailable:
    reason = f"{type(error).__name__}: {error}".rstrip(": ")
    if isinstance(error, TimeoutError):
        hint = (
            f"The server did not answer within {timeout:g}s: is nats-server running there? "
            f"Check the host and port of bus.url in orrery.toml, the network and firewalls"
        )
    elif "authorization" in str(error).lower():
        hint = "The server refused the login: check the user, password or token in bus.url"
    else:
        hint = (
            "Is nats-server running there with JetStream enabled (nats-server -js)? Check "
            "bus.url in orrery.toml (or ORRERY_BUS__URL), the server's listen address and "
            'firewalls; or set bus.backend = "memory" to run on one machine without NATS'
        )
    return BusUnavailable("NATS", address, reason, hint)
