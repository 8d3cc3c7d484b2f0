"""Events as the streams send them: encoded once, or a notice saying why they cannot be.

A stream must never die on one event. An event whose data cannot be written as JSON
(published before the bus checked, mutated after publishing, or sent by a foreign
node) becomes a notice that keeps the event's id, so the client's Last-Event-ID moves
past it and a resume does not stumble over it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec
from orrery.sdk import Event

__all__ = ["Frame", "encode_frame", "notice_frame", "too_large_frame"]

log = logging.getLogger("orrery.kernel.daemon")
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Frame:
    """One message of a stream: the CloudEvents JSON of an event, or a notice."""

    id: str
    type: str
    #: Compact JSON (no newlines): one SSE ``data:`` line or one WebSocket text message.
    payload: bytes
    notice: bool = False

    @property
    def size(self) -> int:
        return len(self.payload)

    def sse(self) -> bytes:
        kind = b"event: notice\n" if self.notice else b""
        return b"id: %s\n%sdata: %s\n\n" % (self.id.encode(), kind, self.payload)


def notice_frame(event: Event, kind: str, message: str, **extra: Any) -> Frame:
    """A notice standing in for ``event`` (its id and type kept)."""
    body = {"notice": kind, "id": event.id, "type": event.type, "message": message, **extra}
    return Frame(event.id, event.type, _encode(body), notice=True)


def encode_frame(event: Event) -> Frame:
    """``event`` as CloudEvents JSON, or an ``unencodable`` notice when it cannot be."""
    try:
        return Frame(event.id, event.type, event.to_json())
    except Exception as e:  # noqa: BLE001 - whatever the data's objects raise
        log.warning(
            "event %s on %s cannot be encoded as JSON (%s: %s); streams get a notice instead",
            event.id,
            event.type,
            type(e).__name__,
            e,
        )
        return notice_frame(
            event,
            "unencodable",
            f"event {event.id} on {event.type} was skipped: its data cannot be encoded "
            f"as JSON ({type(e).__name__}: {e})",
        )


def too_large_frame(event: Event, size: int, limit: int) -> Frame:
    """What the replay buffer keeps of an event larger than the whole buffer."""
    return notice_frame(
        event,
        "too_large",
        f"event {event.id} on {event.type} ({size} bytes) is larger than the replay "
        f"buffer ({limit} bytes) and cannot be replayed",
        size=size,
    )
