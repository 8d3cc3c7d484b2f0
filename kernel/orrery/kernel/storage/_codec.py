"""Value encoding and name validation shared by every backend.

Values travel as msgspec JSON bytes, so both backends store exactly the same bytes and
the database never has to parse them (PostgreSQL ``jsonb`` would reject ``\\u0000`` in
strings, for one).
"""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import InvalidName, UnencodableValue

__all__ = [
    "decode",
    "encode",
    "prefix_upper_bound",
    "validate_name",
]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def encode(value: Any, what: str) -> bytes:
    """Encode ``value`` as JSON; ``what`` names its destination in the error message."""
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError, OverflowError) as e:
        offender, path = _find_offender(value)
        raise UnencodableValue(what, value, offender, path) from e


def decode(raw: bytes) -> Any:
    """Decode bytes written by `encode`."""
    return _decoder.decode(raw)


def _encodes(value: Any) -> bool:
    try:
        _encoder.encode(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _find_offender(value: Any, path: str = "") -> tuple[Any, str]:
    """The innermost part of ``value`` that does not encode, and where it sits.

    Only runs after encoding failed, so its cost never touches the happy path.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return key, f"{path} (a dict key)"
            if not _encodes(item):
                return _find_offender(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if not _encodes(item):
                return _find_offender(item, f"{path}[{index}]")
    return value, path


def validate_name(kind: str, name: object, *, allow_empty: bool = True) -> str:
    """Check that ``name`` is a string both SQLite and PostgreSQL store verbatim.

    PostgreSQL text cannot hold NUL and UTF-8 cannot hold lone surrogates; rejecting
    them on every backend keeps the backends interchangeable.
    """
    if not isinstance(name, str):
        raise InvalidName(kind, name, f"expected a str, got {type(name).__qualname__}")
    if not name and not allow_empty:
        raise InvalidName(kind, name, "it must not be empty")
    if "\x00" in name:
        raise InvalidName(kind, name, "it contains a NUL character ('\\x00'); remove it")
    if not name.isascii():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidName(
                kind, name, "it contains a lone surrogate and is not valid Unicode text"
            ) from e
    return name


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    A scan then becomes the index range ``prefix <= key < bound`` in code-point order
    (UTF-8 byte order, which is SQLite's BINARY and PostgreSQL's "C" collation), with no
    LIKE pattern in which '%' or '_' could act as wildcards. ``None`` means unbounded.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code <= _MAX_CODE_POINT:
            if code in _SURROGATES:
                code = _SURROGATES.stop
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None
