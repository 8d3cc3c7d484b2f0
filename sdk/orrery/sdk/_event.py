"""The Event: CloudEvents 1.0 attributes, carried by the bus and serialised as JSON."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from .errors import InvalidEvent

__all__ = ["Event", "validate_headers"]

SPECVERSION = "1.0"
_CORE_ATTRIBUTES = frozenset(
    {
        "specversion",
        "id",
        "type",
        "source",
        "time",
        "subject",
        "data",
        "data_base64",
        "datacontenttype",
        "dataschema",
        "correlationid",
        "causationid",
        "replyto",
    }
)
# CloudEvents extension attribute names: lower-case ASCII letters and digits, at most 20.
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
# Orrery's protocol headers (DESIGN.md section 11: ``orrery-idempotency-key``,
# ``orrery-attempt``) are dashed words: outside the CloudEvents alphabet, so a strict
# CloudEvents consumer may refuse them; plain names are the portable choice.
_DASHED_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)+")
_DASHED_NAME_MAX = 64
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})"
)
_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder()


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One event on the bus.

    Attributes follow CloudEvents 1.0: ``type`` is the topic, ``subject`` the key,
    ``source`` is ``orrery://<node>/<plugin>``. ``time_ns`` is the creation time in
    nanoseconds since the epoch; `time` gives it as an aware datetime. ``headers`` are
    CloudEvents extension attributes (lower-case letters and digits, string values).
    """

    id: str
    type: str
    source: str
    time_ns: int
    subject: str | None = None
    data: Any = None
    correlationid: str | None = None
    causationid: str | None = None
    replyto: str | None = None
    headers: dict[str, str] | None = None

    @property
    def topic(self) -> str:
        """The topic the event was published on (alias of ``type``)."""
        return self.type

    @property
    def key(self) -> str | None:
        """The partition/ordering key (alias of ``subject``)."""
        return self.subject

    @property
    def time(self) -> datetime:
        """Creation time as an aware UTC datetime (microsecond precision)."""
        return datetime.fromtimestamp(self.time_ns / 1e9, tz=UTC)

    def to_dict(self) -> dict[str, Any]:
        """The event as a CloudEvents 1.0 JSON-format dictionary."""
        out: dict[str, Any] = {
            "specversion": SPECVERSION,
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "time": format_time_ns(self.time_ns),
            "datacontenttype": "application/json",
        }
        if self.subject is not None:
            out["subject"] = self.subject
        if self.correlationid is not None:
            out["correlationid"] = self.correlationid
        if self.causationid is not None:
            out["causationid"] = self.causationid
        if self.replyto is not None:
            out["replyto"] = self.replyto
        if self.headers:
            out.update(self.headers)
        out["data"] = self.data
        return out

    def to_json(self) -> bytes:
        """The event in CloudEvents 1.0 structured JSON format."""
        return _json_encoder.encode(self.to_dict())

    @classmethod
    def from_dict(cls, obj: Any) -> Event:
        """Build an event from a CloudEvents JSON-format dictionary, validating it."""
        if not isinstance(obj, dict):
            raise InvalidEvent(f"expected a JSON object, got {type(obj).__name__}", payload=obj)
        if obj.get("specversion") != SPECVERSION:
            raise InvalidEvent(
                f"specversion must be '1.0', got {obj.get('specversion')!r}", payload=obj
            )
        for attr in ("id", "type", "source"):
            value = obj.get(attr)
            if not isinstance(value, str) or not value:
                raise InvalidEvent(f"attribute {attr!r} must be a non-empty string", payload=obj)
        optional: dict[str, str | None] = {}
        for attr in ("subject", "correlationid", "causationid", "replyto"):
            value = obj.get(attr)
            if value is not None and not isinstance(value, str):
                raise InvalidEvent(f"attribute {attr!r} must be a string", payload=obj)
            optional[attr] = value
        time_value = obj.get("time")
        if time_value is None:
            raise InvalidEvent("attribute 'time' is required", payload=obj)
        if "data_base64" in obj:
            raise InvalidEvent("binary data (data_base64) is not supported; send JSON data")
        headers = {k: v for k, v in obj.items() if k not in _CORE_ATTRIBUTES}
        try:
            validate_headers(headers)
        except ValueError as e:
            raise InvalidEvent(str(e), payload=obj) from e
        return cls(
            id=obj["id"],
            type=obj["type"],
            source=obj["source"],
            time_ns=parse_time_ns(time_value),
            data=obj.get("data"),
            headers=headers or None,
            **optional,
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        """Parse a CloudEvents 1.0 structured JSON document."""
        try:
            obj = _json_decoder.decode(raw)
        except msgspec.DecodeError as e:
            raise InvalidEvent(f"not valid JSON ({e})", payload=raw) from e
        return cls.from_dict(obj)


def validate_headers(headers: dict[str, Any]) -> None:
    """Raise `ValueError` unless every header is a valid CloudEvents extension attribute
    or a dashed Orrery protocol header such as ``orrery-idempotency-key``."""
    for name, value in headers.items():
        if not isinstance(name, str) or not _is_header_name(name):
            raise ValueError(
                f"header {name!r} is not a valid header name: use 1-20 lower-case letters "
                f"and digits (a CloudEvents extension name), or lower-case words joined by "
                f"single dashes, at most {_DASHED_NAME_MAX} characters"
            )
        if name in _CORE_ATTRIBUTES:
            raise ValueError(f"header {name!r} would overwrite a CloudEvents attribute")
        if not isinstance(value, str):
            raise ValueError(f"header {name!r} must have a string value, got {value!r}")


def _is_header_name(name: str) -> bool:
    if _EXTENSION_NAME.fullmatch(name):
        return True
    return len(name) <= _DASHED_NAME_MAX and _DASHED_NAME.fullmatch(name) is not None


def format_time_ns(time_ns: int) -> str:
    """RFC 3339 UTC timestamp with nanoseconds, so a JSON round trip is exact."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def parse_time_ns(value: Any) -> int:
    """Parse an RFC 3339 timestamp into nanoseconds since the epoch."""
    if not isinstance(value, str):
        raise InvalidEvent(f"attribute 'time' must be an RFC 3339 string, got {value!r}")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise InvalidEvent(f"attribute 'time' is not RFC 3339: {value!r}")
    day, clock, fraction, offset = match.groups()
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        whole = datetime.fromisoformat(f"{day}T{clock}{zone}")
    except ValueError as e:
        raise InvalidEvent(f"attribute 'time' is not a real date: {value!r}") from e
    nanos = int((fraction or "0").ljust(9, "0"))
    return int(whole.timestamp()) * 1_000_000_000 + nanos
