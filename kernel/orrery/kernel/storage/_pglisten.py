"""Live journal wake-ups across processes through PostgreSQL LISTEN/NOTIFY.

``orrery_append`` announces ``[namespace, stream]`` at commit on a channel of its schema;
every PostgresStorage listens there on one dedicated connection and wakes its
subscribers, so a kernel daemon sees appends made by another daemon. Subscribers
always re-read from the database, so a lost or duplicated notification costs at most a
needless read: after a reconnect everyone is woken to catch up.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import asyncpg
import msgspec

from ._migrations import POSTGRES_CHANNEL_PREFIX
from ._subscription import SubscriptionHub

__all__ = ["JournalListener", "channel_for_schema"]

log = logging.getLogger("orrery.kernel.storage")

_payload_decoder = msgspec.json.Decoder(tuple[str, str])
#: Longest wait between reconnection attempts after the connection dropped (seconds).
_MAX_BACKOFF = 5.0


def channel_for_schema(schema: str) -> str:
    """The NOTIFY channel of ``schema`` (must match the one ``orrery_append`` computes)."""
    return POSTGRES_CHANNEL_PREFIX + hashlib.md5(schema.encode()).hexdigest()[:16]


class JournalListener:
    """Holds the LISTEN connection of one storage and reconnects when it drops."""

    def __init__(self, dsn: str, schema: str, hub: SubscriptionHub, timeout: float) -> None:
        self._dsn = dsn
        self._channel = channel_for_schema(schema)
        self._hub = hub
        self._timeout = timeout
        self._conn: asyncpg.Connection[Any] | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Connect and LISTEN; connection errors propagate to the caller."""
        conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
        try:
            await conn.add_listener(self._channel, self._on_notification)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._on_lost)
        self._conn = conn

    async def stop(self) -> None:
        """Stop reconnecting and close the connection."""
        self._closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            await asyncio.gather(self._reconnect, return_exceptions=True)
            self._reconnect = None
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), timeout=self._timeout)
            except (TimeoutError, OSError, asyncpg.InterfaceError):
                conn.terminate()

    def _on_notification(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if not isinstance(payload, str) or not payload:
            self._hub.notify_all()
            return
        try:
            namespace, stream = _payload_decoder.decode(payload)
        except msgspec.DecodeError:
            log.warning("unexpected payload %r on channel %s; waking everyone", payload, channel)
            self._hub.notify_all()
            return
        self._hub.notify(namespace, stream)

    def _on_lost(self, conn: object) -> None:
        if self._closing or conn is not self._conn:
            return
        self._conn = None
        log.warning(
            "lost the LISTEN connection for journal subscriptions; reconnecting (until "
            "then, appends by other processes reach subscribers late)"
        )
        self._reconnect = asyncio.get_running_loop().create_task(
            self._reconnect_forever(), name="journal-listener-reconnect"
        )

    async def _reconnect_forever(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                await self.start()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.debug("LISTEN reconnection failed: %s; retrying in %.1fs", e, delay)
                # Backoff between attempts against a server that is down, not a wait
                # for something to happen.
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
                continue
            log.info("LISTEN connection for journal subscriptions is back")
            # Appends made while we were disconnected sent no wake-up we could see.
            self._hub.notify_all()
            return
