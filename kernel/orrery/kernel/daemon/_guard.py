"""Connection limits of the HTTP listener: header-read timeout and connection cap.

aiohttp closes idle kept-alive connections itself (``keepalive_timeout``), but a client
that connects and then sends nothing, or drips a request's headers a byte at a time,
would hold a file descriptor for as long as it likes. Each accepted connection gets a
thin protocol in front of aiohttp's: it counts connections (refusing those over the
limit with a 503 instead of queueing them unseen), and closes with a 408 a connection
whose request headers are not complete within ``header_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

__all__ = ["GUARD", "ConnectionGuard", "listen"]

log = logging.getLogger("orrery.kernel.daemon")
_encode = msgspec.json.Encoder().encode
_END_OF_HEADERS = (b"\r\n\r\n", b"\n\n")


def _answer(status: str, message: str, extra: str = "") -> bytes:
    body = _encode({"status": int(status.split()[0]), "error": message, "field": None})
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    ).encode() + body


class ConnectionGuard:
    """Counts the listener's connections and applies the limits to each."""

    def __init__(self, *, header_timeout: float, max_connections: int) -> None:
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0
        self.timed_out = 0
        #: Guarded protocols by transport, so the app can say when a request is answered.
        self._by_transport: dict[Any, _Guarded] = {}

    def factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` wrapping aiohttp's ``make``."""

        def build() -> asyncio.Protocol:
            if self.open >= self.max_connections:
                return _Refused(self)
            return _Guarded(self, make())

        return build

    def stats(self) -> dict[str, Any]:
        """What ``GET /v1/status`` reports about connections."""
        return {
            "open": self.open,
            "max_connections": self.max_connections,
            "refused": self.refused,
            "header_timeouts": self.timed_out,
            "header_timeout_s": self.header_timeout,
        }

    def request_done(self, transport: Any) -> None:
        """A request on ``transport`` was answered: the next one gets a fresh header timer."""
        guarded = self._by_transport.get(transport)
        if guarded is not None:
            guarded.idle()

    def register(self, transport: Any, guarded: _Guarded) -> None:
        self.open += 1
        self._by_transport[transport] = guarded

    def forget(self, transport: Any) -> None:
        if self._by_transport.pop(transport, None) is not None:
            self.open -= 1


class _Refused(asyncio.Protocol):
    """Over the connection limit: a clear 503, then close."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._guard.refused += 1
        log.warning(
            "refused a connection: %d open, the limit is %d ([daemon] max_connections)",
            self._guard.open,
            self._guard.max_connections,
        )
        assert isinstance(transport, asyncio.Transport)
        transport.write(
            _answer(
                "503 Service Unavailable",
                f"the daemon already has {self._guard.max_connections} open connections "
                f"(its limit); retry shortly, close idle clients, or raise [daemon] "
                f"max_connections",
                "Retry-After: 1\r\n",
            )
        )
        transport.close()


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol, with a timer on the request headers."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: "headers" while waiting for a request's headers, "request" while one is handled,
        #: "idle" between requests (aiohttp's keep-alive timeout applies then).
        self._phase = "headers"
        self._tail = b""

    # -- asyncio.Protocol, forwarded to aiohttp -------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._guard.register(transport, self)
        self._arm()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._phase == "idle":
            self._phase, self._tail = "headers", b""
            self._arm()
        if self._phase == "headers":
            seen = self._tail + data
            if any(end in seen for end in _END_OF_HEADERS):
                self._phase = "request"
                self._disarm()
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._transport is not None:
            self._guard.forget(self._transport)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    # -- the header timer -----------------------------------------------------------------

    def idle(self) -> None:
        if self._phase == "request":
            self._phase = "idle"

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if self._phase != "headers" or transport is None or transport.is_closing():
            return
        self._guard.timed_out += 1
        log.info(
            "closed a connection that sent no complete request headers within %gs",
            self._guard.header_timeout,
        )
        transport.write(
            _answer(
                "408 Request Timeout",
                f"no complete request headers within {self._guard.header_timeout:g}s "
                f"([daemon] header_timeout); the connection is closed",
            )
        )
        transport.close()


async def listen(
    runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard, *, backlog: int = 1024
) -> asyncio.Server:
    """Accept connections for ``runner``'s (set up) server through ``guard``.

    Close the returned listener before ``runner.cleanup()``, which then drains the
    connections already open.
    """
    server = runner.server
    assert server is not None, "call runner.setup() first"
    loop = asyncio.get_running_loop()
    return await loop.create_server(guard.factory(server), host, port, backlog=backlog)


GUARD = web.AppKey("guard", ConnectionGuard)
