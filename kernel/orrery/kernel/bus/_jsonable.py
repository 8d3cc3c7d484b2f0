"""The bus carries JSON-able data: the publish-side check, and the error that names
what cannot be encoded."""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import InvalidData

__all__ = ["PLAIN", "check_data", "encode", "refusal"]

# What the daemon's streams and the NATS wire encode with (msgspec's JSON encoder), so a
# value that passes here can be written everywhere an event goes.
encode = msgspec.json.Encoder().encode
#: Types let through without encoding.
PLAIN = frozenset({type(None), str, int, float, bool})
_encode = encode


def check_data(topic: str, data: Any) -> None:
    """Raise `InvalidData` unless ``data`` can be encoded as JSON (one encode; plain
    scalars are let through without it)."""
    if data.__class__ in PLAIN:
        return
    try:
        _encode(data)
    except Exception as e:
        raise refusal(topic, data) or InvalidData(topic, type(data), "data", data) from e


def refusal(topic: str, data: Any) -> InvalidData | None:
    """The `InvalidData` naming the first part of ``data`` that cannot be encoded, or
    None if all of it can (the failure was something else)."""
    found = _find(data, "data", 0)
    if found is None:
        return None
    offending, path = found
    return InvalidData(topic, offending, path, data)


def _find(value: Any, path: str, depth: int) -> tuple[type, str] | None:
    if depth > 64:
        return type(value), path  # nesting beyond what anyone means to publish
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                return type(key), f"a key of {path}"
            found = _find(item, f"{path}[{key!r}]", depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find(item, f"{path}[{index}]", depth + 1)
            if found is not None:
                return found
        return None
    try:
        _encode(value)
    except Exception:
        return type(value), path
    return None
