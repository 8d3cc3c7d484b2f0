"""Journal event records: what goes into a stream and what comes back out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import msgspec
from orrery.sdk import Event, new_event_id

from ._codec import decode, encode, validate_name
from .errors import InvalidJournalEvent

__all__ = ["EventRow", "RawEvent", "StoredEvent", "decode_event", "encode_events"]

#: Source given to `StoredEvent.to_event` when the appended event named none.
DEFAULT_SOURCE = "orrery://local/journal"
_TYPE_AND_DATA = frozenset({"type", "data"})
_DICT_KEYS = frozenset(
    {"type", "data", "id", "source", "subject", "correlationid", "causationid", "headers"}
)


class _Meta(msgspec.Struct, omit_defaults=True):
    """CloudEvents attributes kept beside an event's data (one small JSON object)."""

    id: str
    source: str | None = None
    subject: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    headers: dict[str, str] | None = None
    time_ns: int | None = None


_meta_encoder = msgspec.json.Encoder()
_meta_decoder = msgspec.json.Decoder(_Meta)


class EventRow(NamedTuple):
    """One event ready to insert: its type, and JSON bytes for data and metadata."""

    type: str
    data: bytes
    meta: bytes


class RawEvent(NamedTuple):
    """One event row as a backend reads it, before decoding."""

    stream: str
    version: int
    position: int
    type: str
    data: bytes
    meta: bytes | None
    time_ns: int


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored in a journal stream (implements `orrery.sdk.JournalEvent`).

    ``version`` counts from 1 within the stream; ``position`` orders events across all
    streams of the journal (strictly increasing, not necessarily contiguous);
    ``time_ns`` is when the event was appended. The CloudEvents attributes of an
    appended `orrery.sdk.Event` are kept (``event_time_ns`` is its own creation time);
    `to_event` rebuilds it.
    """

    stream: str
    version: int
    position: int
    type: str
    data: Any
    time_ns: int
    id: str
    source: str | None = None
    subject: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    headers: dict[str, str] | None = None
    event_time_ns: int | None = None

    def to_event(self) -> Event:
        """This record as a bus `orrery.sdk.Event` (its original id, source and time)."""
        return Event(
            id=self.id,
            type=self.type,
            source=self.source or DEFAULT_SOURCE,
            time_ns=self.event_time_ns if self.event_time_ns is not None else self.time_ns,
            subject=self.subject,
            data=self.data,
            correlationid=self.correlationid,
            causationid=self.causationid,
            headers=self.headers,
        )


def decode_event(raw: RawEvent) -> StoredEvent:
    """Turn a backend row into a `StoredEvent`."""
    meta = _meta_decoder.decode(raw.meta) if raw.meta is not None else None
    if meta is None:
        return StoredEvent(
            stream=raw.stream,
            version=raw.version,
            position=raw.position,
            type=raw.type,
            data=decode(raw.data),
            time_ns=raw.time_ns,
            id="",
        )
    return StoredEvent(
        stream=raw.stream,
        version=raw.version,
        position=raw.position,
        type=raw.type,
        data=decode(raw.data),
        time_ns=raw.time_ns,
        id=meta.id,
        source=meta.source,
        subject=meta.subject,
        correlationid=meta.correlationid,
        causationid=meta.causationid,
        headers=meta.headers,
        event_time_ns=meta.time_ns,
    )


def encode_events(stream: str, events: Sequence[Any]) -> list[EventRow]:
    """Validate and encode events to append; raises before anything is written."""
    if isinstance(events, str | bytes | Mapping | Event) or not isinstance(events, Sequence):
        raise InvalidJournalEvent(
            events, "events must be a sequence (list or tuple) of events, even for one event"
        )
    rows: list[EventRow] = []
    for index, event in enumerate(events):
        if type(event) is dict:  # the common case first: cheaper than the ABC check
            event_type, data, meta = _from_mapping(event)
        elif isinstance(event, Event):
            meta = _Meta(
                id=event.id,
                source=event.source,
                subject=event.subject,
                correlationid=event.correlationid,
                causationid=event.causationid,
                headers=event.headers,
                time_ns=event.time_ns,
            )
            event_type, data = event.type, event.data
        elif isinstance(event, StoredEvent):
            # Copying an event into another stream keeps its identity and attributes.
            meta = _Meta(
                id=event.id or new_event_id(),
                source=event.source,
                subject=event.subject,
                correlationid=event.correlationid,
                causationid=event.causationid,
                headers=event.headers,
                time_ns=event.event_time_ns,
            )
            event_type, data = event.type, event.data
        elif isinstance(event, Mapping):
            event_type, data, meta = _from_mapping(event)
        else:
            raise InvalidJournalEvent(
                event, f"event #{index} is a {type(event).__qualname__}, not an Event or dict"
            )
        if not isinstance(event_type, str) or not event_type:
            raise InvalidJournalEvent(event, "its 'type' must be a non-empty string")
        validate_name("event type", event_type)
        what = f"event #{index} ({event_type!r}) for stream {stream!r}"
        rows.append(EventRow(event_type, encode(data, what), _encode_meta(meta, event, what)))
    return rows


def _encode_meta(meta: _Meta, event: object, what: str) -> bytes:
    try:
        return _meta_encoder.encode(meta)
    except (TypeError, ValueError) as e:
        raise InvalidJournalEvent(event, f"{what} has attributes that are not JSON-able") from e


def _from_mapping(event: Mapping[Any, Any]) -> tuple[Any, Any, _Meta]:
    if not event.keys() <= _DICT_KEYS:
        unknown = sorted(map(str, set(event) - _DICT_KEYS))
        raise InvalidJournalEvent(event, f"unknown keys {unknown}; allowed: {sorted(_DICT_KEYS)}")
    if "type" not in event:
        raise InvalidJournalEvent(event, "it has no 'type'")
    if event.keys() <= _TYPE_AND_DATA:
        # The common {'type', 'data'} shape: nothing else to check.
        return event["type"], event.get("data"), _Meta(id=new_event_id())
    for attr in ("id", "source", "subject", "correlationid", "causationid"):
        value = event.get(attr)
        if value is not None and not isinstance(value, str):
            raise InvalidJournalEvent(event, f"its {attr!r} must be a string")
    headers = event.get("headers")
    if headers is not None and not (
        isinstance(headers, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise InvalidJournalEvent(event, "its 'headers' must map strings to strings")
    meta = _Meta(
        id=event.get("id") or new_event_id(),
        source=event.get("source"),
        subject=event.get("subject"),
        correlationid=event.get("correlationid"),
        causationid=event.get("causationid"),
        headers=dict(headers) if headers is not None else None,
    )
    return event["type"], event.get("data"), meta
