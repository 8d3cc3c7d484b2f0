"""``/v1/events``: publish, and stream as Server-Sent Events or over a WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
from aiohttp import WSMsgType, web
from orrery.kernel.bus import BusClosed, InvalidHeaders
from orrery.sdk import Event, InvalidTopic, validate_pattern
from orrery.sdk.wire import format_time_ns

from ._endpoints import Endpoint, Param
from ._http import KERNEL, SETTINGS, authorize, json_response, parse_body
from ._models import EventAck, PublishRequest
from ._streams import HUB, StreamSession
from .errors import HttpError

__all__ = ["EVENT_ENDPOINTS"]

log = logging.getLogger("orrery.kernel.daemon")
_encode = msgspec.json.Encoder().encode

_PATTERN = Param(
    "pattern", "query", "NATS-style pattern: '*' matches one token, '>' the rest (default '>')"
)
_LAST_ID_HEADER = Param(
    "Last-Event-ID", "header", "Resume after this event id (from the daemon's replay buffer)"
)
_LAST_ID_QUERY = Param(
    "last_event_id", "query", "Same as the Last-Event-ID header, for clients that cannot set it"
)


async def publish_event(request: web.Request) -> web.Response:
    body = await parse_body(request, PublishRequest)
    await authorize(request, "events.publish", body.topic)
    kernel = request.app[KERNEL]
    try:
        event = await kernel.bus.publish(body.topic, body.data, key=body.key, headers=body.headers)
    except InvalidTopic as e:
        raise HttpError(422, str(e), field="topic") from e
    except InvalidHeaders as e:
        raise HttpError(422, str(e), field="headers") from e
    except BusClosed as e:
        raise HttpError(503, "the daemon is shutting down; retry against the next one") from e
    # 202: the event is on every matching subscriber's queue (handled, for idle ones).
    ack = {
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "time": format_time_ns(event.time_ns),
    }
    return json_response(ack, status=202)


def _open(request: web.Request) -> tuple[StreamSession, list[Event], bool]:
    pattern = request.query.get("pattern", ">")
    try:
        validate_pattern(pattern)
    except InvalidTopic as e:
        raise HttpError(422, str(e), field="pattern") from e
    last_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    return request.app[HUB].open(pattern, last_id)


def _notice(kind: str, message: str, session: StreamSession) -> dict[str, Any]:
    return {"notice": kind, "message": message, "last_event_id": session.last_id or None}


def _gap_notice(session: StreamSession) -> dict[str, Any]:
    return _notice(
        "gap",
        "some events after Last-Event-ID are no longer in the daemon's replay buffer; "
        "what follows starts with the oldest event still kept",
        session,
    )


def _end_notice(session: StreamSession) -> dict[str, Any]:
    kind = "overflow" if session.overflowed else "closed"
    return _notice(kind, f"stream closed: {session.closed}; reconnect with Last-Event-ID", session)


def _sse_events(events: list[Event]) -> bytes:
    # msgspec's compact JSON has no newlines, so each event is one "data:" line.
    return b"".join(b"id: %s\ndata: %s\n\n" % (e.id.encode(), e.to_json()) for e in events)


def _sse_notice(notice: dict[str, Any]) -> bytes:
    return b"event: notice\ndata: %s\n\n" % _encode(notice)


async def stream_sse(request: web.Request) -> web.StreamResponse:
    session, backlog, lost = _open(request)
    hub = request.app[HUB]
    keepalive = request.app[SETTINGS].keepalive
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # tell reverse proxies not to buffer the stream
        }
    )
    try:
        await response.prepare(request)
        opening = b": orrery event stream\n\n"
        if lost:
            opening += _sse_notice(_gap_notice(session))
        await response.write(opening + _sse_events(backlog))
        while (batch := await session.next_batch(keepalive)) is not None:
            await response.write(_sse_events(batch) if batch else b": keepalive\n\n")
        await response.write(_sse_notice(_end_notice(session)))
    except ConnectionError:
        # The client went away: nothing to answer; the finally releases the subscription.
        pass
    finally:
        hub.close(session)
    return response


async def stream_ws(request: web.Request) -> web.StreamResponse:
    session, backlog, lost = _open(request)
    hub = request.app[HUB]
    keepalive = request.app[SETTINGS].keepalive
    ws = web.WebSocketResponse(heartbeat=keepalive)
    if not ws.can_prepare(request).ok:
        hub.close(session)
        raise HttpError(
            400, "this endpoint needs a WebSocket upgrade; use GET /v1/events/stream for SSE"
        )

    async def read_until_closed() -> None:
        # Clients only listen; reading is how a close or a dead connection is noticed.
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
        session.close("the client closed the WebSocket")

    reader: asyncio.Task[None] | None = None
    try:
        await ws.prepare(request)
        reader = asyncio.create_task(read_until_closed(), name="orrery-ws-reader")
        if lost:
            await ws.send_str(_encode(_gap_notice(session)).decode())
        for event in backlog:
            await ws.send_str(event.to_json().decode())
        while (batch := await session.next_batch(keepalive)) is not None:
            for event in batch:
                await ws.send_str(event.to_json().decode())
        if not ws.closed:
            await ws.send_str(_encode(_end_notice(session)).decode())
    except ConnectionError:
        pass
    finally:
        hub.close(session)
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        with contextlib.suppress(ConnectionError):
            await ws.close()
    return ws


_TAG = "events"
EVENT_ENDPOINTS = (
    Endpoint(
        "POST",
        "/v1/events",
        publish_event,
        "publishEvent",
        "Publish one event on the bus",
        _TAG,
        response=EventAck,
        status=202,
        body=PublishRequest,
        errors=(403, 503),
        action="events.publish",
        description="Answered once every matching subscriber has the event queued.",
    ),
    Endpoint(
        "GET",
        "/v1/events/stream",
        stream_sse,
        "streamEvents",
        "Stream events as Server-Sent Events",
        _TAG,
        response=str,
        params=(_PATTERN, _LAST_ID_HEADER, _LAST_ID_QUERY),
        media_type="text/event-stream",
        description="Each event is one SSE message: 'id' is the event id, 'data' the "
        "CloudEvents JSON. Notices ('event: notice') report gaps and the end of the "
        "stream. Resume with Last-Event-ID while the event is in the replay buffer.",
    ),
    Endpoint(
        "GET",
        "/v1/events/ws",
        stream_ws,
        "streamEventsWebSocket",
        "Stream events over a WebSocket",
        _TAG,
        response=str,
        params=(_PATTERN, _LAST_ID_HEADER, _LAST_ID_QUERY),
        errors=(400,),
        media_type="websocket",
        description="Upgrade to a WebSocket: one CloudEvents JSON text message per event; "
        "messages with a 'notice' key report gaps and the end of the stream.",
    ),
)
