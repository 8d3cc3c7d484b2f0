"""Events on the wire: CloudEvents 1.0 structured JSON, the same document as
`orrery.sdk.Event.to_json`, encoded and decoded on a fast path.

The fast path is a msgspec Struct with the CloudEvents attribute names, so encoding and
decoding skip the intermediate dict; RFC 3339 timestamps are formatted and parsed with
the seconds part cached, because consecutive events nearly always share it. Events with
extension attributes (headers) take the general `Event.to_json` / `Event.from_json`
path: the Struct refuses unknown fields, which routes them there.
"""

from __future__ import annotations

import calendar
from typing import Any

import msgspec
from orrery.sdk import Event
from orrery.sdk.wire import parse_time_ns

__all__ = ["decode_event", "encode_event"]


class _Wire(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True, kw_only=True, gc=False):
    specversion: str
    id: str
    type: str
    source: str
    time: str
    datacontenttype: str
    subject: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    replyto: str | None = None
    # Required, so "data": null is written like Event.to_json writes it.
    data: Any


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Wire).decode
_time = calendar.timegm

# The seconds part of the last timestamp formatted / parsed, and its counterpart.
_fmt_seconds = -1
_fmt_text = ""
_parse_text = ""
_parse_seconds = 0


def _format_time(time_ns: int) -> str:
    global _fmt_seconds, _fmt_text
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    if seconds != _fmt_seconds:
        import time as _t

        _fmt_text = _t.strftime("%Y-%m-%dT%H:%M:%S.", _t.gmtime(seconds))
        _fmt_seconds = seconds
    return f"{_fmt_text}{nanos:09d}Z"


def _parse_time(text: str) -> int:
    global _parse_text, _parse_seconds
    # The shape we write: 2026-01-02T03:04:05.123456789Z (30 characters).
    if len(text) == 30 and text[19] == "." and text[29] == "Z":
        head = text[:19]
        if head != _parse_text:
            try:
                stamp = (
                    int(head[0:4]),
                    int(head[5:7]),
                    int(head[8:10]),
                    int(head[11:13]),
                    int(head[14:16]),
                    int(head[17:19]),
                )
            except ValueError:
                return parse_time_ns(text)
            _parse_seconds = _time(stamp) * 1_000_000_000
            _parse_text = head
        fraction = text[20:29]
        if fraction.isdigit():
            return _parse_seconds + int(fraction)
    return parse_time_ns(text)


# Encoded '"type":...,"source":...,"time":"' per (type, source): a publisher repeats both.
_heads: dict[tuple[str, str], bytes] = {}
_HEADS_MAX = 4096
_TAIL = b'","datacontenttype":"application/json","data":'


def encode_event(event: Event) -> bytes:
    """``event`` as CloudEvents structured JSON (what `Event.to_json` returns)."""
    if event.headers:
        return event.to_json()
    if (
        event.subject is None
        and event.correlationid is None
        and event.causationid is None
        and event.replyto is None
    ):
        # The common shape, assembled from cached pieces: every part is JSON-encoded by
        # msgspec (so escaping is right), only the fixed punctuation is literal.
        key = (event.type, event.source)
        head = _heads.get(key)
        if head is None:
            if len(_heads) >= _HEADS_MAX:
                _heads.clear()
            head = _heads[key] = (
                b',"type":'
                + _encode(event.type)
                + b',"source":'
                + _encode(event.source)
                + b',"time":"'
            )
        return b"".join(
            (
                b'{"specversion":"1.0","id":',
                _encode(event.id),
                head,
                _format_time(event.time_ns).encode(),
                _TAIL,
                _encode(event.data),
                b"}",
            )
        )
    return _encode(
        _Wire(
            specversion="1.0",
            id=event.id,
            type=event.type,
            source=event.source,
            time=_format_time(event.time_ns),
            datacontenttype="application/json",
            subject=event.subject,
            correlationid=event.correlationid,
            causationid=event.causationid,
            replyto=event.replyto,
            data=event.data,
        )
    )


def decode_event(raw: bytes) -> Event:
    """Parse CloudEvents structured JSON; raises `orrery.sdk.InvalidEvent` if it is not."""
    try:
        wire = _decode(raw)
    except msgspec.ValidationError:
        return Event.from_json(raw)  # extension attributes, or something to report
    except msgspec.DecodeError:
        return Event.from_json(raw)
    if wire.specversion != "1.0" or not wire.id or not wire.type or not wire.source:
        return Event.from_json(raw)
    return Event(
        id=wire.id,
        type=wire.type,
        source=wire.source,
        time_ns=_parse_time(wire.time),
        subject=wire.subject,
        data=wire.data,
        correlationid=wire.correlationid,
        causationid=wire.causationid,
        replyto=wire.replyto,
    )
