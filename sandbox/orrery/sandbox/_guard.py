"""Kernel side: bound what one frame from a worker may cost before it is decoded.

A worker is untrusted. Before a frame is decoded the kernel reads only its head
(``[kind, id, op, first-argument]``) and decides:

- the size cap for that kind of frame: `CONTROL_FRAME` for calls that carry no data
  (subscribe, route, store.get, log lines, ...), ``max_frame`` for calls that do;
- whether the call is known and allowed at all (`FrameGuard.precheck`), so a denied
  call's arguments are never decoded;
- each call is decoded with a typed msgspec decoder (`CALL_DECODERS`), answers with
  `ANSWER_DECODER`: wrong argument types or counts are refused by the decoder;
- for frames that could expand (more than `MAX_DEPTH` container bytes, or larger than
  `SCAN_ABOVE`), a scan of the msgpack structure without building objects: at most
  `MAX_DEPTH` levels of nesting and `MAX_OBJECTS` values. A frame of empty lists would
  otherwise grow ~78 times in memory when decoded, and a 100,000-deep one overflows
  the decoder's recursion.

A refused frame gets an error answer (when it has a call id); oversized bytes are
skipped as they arrive, never buffered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

__all__ = [
    "ANSWER_DECODER",
    "CALL_DECODERS",
    "CALL_SCOPES",
    "CONTROL_FRAME",
    "DATA_OPS",
    "MAX_DEPTH",
    "MAX_OBJECTS",
    "FrameGuard",
    "FrameHead",
    "FrameRefused",
    "measure",
    "peek",
]

#: Bytes a frame without data may have (subscribe, route, get, log, pong, ...).
CONTROL_FRAME = 64 * 1024
#: Nesting levels a frame may have (JSON-able data rarely needs more than a dozen).
MAX_DEPTH = 64
#: Values (scalars and containers) in one frame at most: ~64 bytes each once decoded.
MAX_OBJECTS = 256 * 1024
#: Frames at most this large with few container bytes are decoded without a scan.
SCAN_ABOVE = 256 * 1024
#: Bytes of a frame's start needed to read its head.
HEAD_BYTES = 256

#: Calls whose frames may carry data up to ``max_frame_mb``; others are small.
DATA_OPS = frozenset({
    "bus.publish", "bus.request", "services.call", "store.put", "journal.append",
    "journal.save_snapshot",
})
#: Call -> (permission scope, whether its first argument is the resource), checked
#: before the arguments are decoded.
CALL_SCOPES: dict[str, tuple[str, bool]] = {
    "bus.publish": ("bus.publish", True),
    "bus.request": ("bus.request", True),
    "services.call": ("services.get", True),
    "services.provide": ("services.provide", True),
    "services.get": ("services.get", True),
    "http.route": ("http.route", False),
    **{op: ("store", False) for op in ("store.get", "store.put", "store.delete", "store.scan")},
    **{op: ("journal", False) for op in (
        "journal.append", "journal.read", "journal.version", "journal.read_all",
        "journal.save_snapshot", "journal.load_snapshot", "journal.truncate",
        "journal.subscribe",
    )},
}

_Opt = str | None
#: Typed decoders per call: a frame whose arguments have the wrong types or count is
#: refused by msgspec before any handler sees it. ``[kind, id, op, *args]``.
_CALL_TYPES: dict[str, Any] = {
    "bus.publish": tuple[int, int, str, str, Any, _Opt, dict[str, Any] | None],
    "bus.request": tuple[int, int, str, str, Any, float],
    "bus.subscribe": tuple[int, int, str, int, str, _Opt, _Opt],
    "bus.unsubscribe": tuple[int, int, str, int],
    "bus.drain": tuple[int, int, str, int],
    "services.call": tuple[int, int, str, str, str, list[Any], dict[str, Any]],
    "services.provide": tuple[int, int, str, str],
    "services.get": tuple[int, int, str, str],
    "http.route": tuple[int, int, str, int, str, str],
    "store.get": tuple[int, int, str, str],
    "store.put": tuple[int, int, str, str, Any],
    "store.delete": tuple[int, int, str, str],
    "store.scan": tuple[int, int, str, str],
    "journal.append": tuple[int, int, str, str, list[Any], int | None],
    "journal.version": tuple[int, int, str, str],
    "journal.read": tuple[int, int, str, str, int],
    "journal.read_all": tuple[int, int, str, int, int | None],
    "journal.save_snapshot": tuple[int, int, str, str, int, Any],
    "journal.load_snapshot": tuple[int, int, str, str, int | None],
    "journal.truncate": tuple[int, int, str, str, int],
    "journal.subscribe": tuple[int, int, str, int, str, int],
}
CALL_DECODERS = {op: msgspec.msgpack.Decoder(t) for op, t in _CALL_TYPES.items()}
#: Answers (RESULT/ACK): ``[kind, id, ok, value-or-error]``.
ANSWER_DECODER = msgspec.msgpack.Decoder(tuple[int, int, bool, Any])

# Bytes that may start a msgpack map or array (an over-count: string bytes match too).
_CONTAINER_BYTES = bytes([*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF])


class FrameRefused(ValueError):
    """A frame the kernel will not decode; the message says why and what to do."""


class FrameHead:
    """``[kind, id, op, first]`` of a frame: op and first are None when absent."""

    __slots__ = ("call_id", "first", "kind", "op")

    def __init__(self, kind: int, call_id: int, op: str | None, first: str | None) -> None:
        self.kind = kind
        self.call_id = call_id
        self.op = op
        self.first = first


def _uint(buf: bytes, pos: int, n: int) -> int:
    if pos + n > len(buf):
        raise FrameRefused("truncated frame head")
    return int.from_bytes(buf[pos:pos + n], "big")


_INT_SIZES = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}


def _read_int(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b <= 0x7F:
        return b, pos + 1
    if b >= 0xE0:
        return b - 0x100, pos + 1
    n = _INT_SIZES.get(b)
    if n is None:
        raise FrameRefused("a frame's kind and id must be integers")
    value = _uint(buf, pos + 1, n)
    if b >= 0xD0 and value >= 1 << (8 * n - 1):
        value -= 1 << (8 * n)
    return value, pos + 1 + n


def _read_str(buf: bytes, pos: int) -> tuple[str | None, int]:
    b = buf[pos]
    if 0xA0 <= b <= 0xBF:
        n, start = b & 0x1F, pos + 1
    elif b in (0xD9, 0xDA, 0xDB):
        width = {0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
        n, start = _uint(buf, pos + 1, width), pos + 1 + width
    else:
        return None, pos
    if start + n > len(buf):
        return None, pos  # longer than the head we looked at: not a name
    return buf[start:start + n].decode("utf-8", "replace"), start + n


def peek(head: bytes) -> FrameHead:
    """Read ``[kind, id, op?, first?]`` from a frame's first bytes."""
    # Fast path for what workers send: a fixarray, fixint kind, id as fixint, uint16/32,
    # op and first argument as short strings.
    size = len(head)
    if size >= 3 and 0x94 <= head[0] <= 0x9F and head[1] <= 0x7F:
        c = head[2]
        if c <= 0x7F:
            call_id, pos = c, 3
        elif c == 0xCD and size >= 5:
            call_id, pos = (head[3] << 8) | head[4], 5
        elif c == 0xCE and size >= 7:
            call_id, pos = int.from_bytes(head[3:7], "big"), 7
        else:
            return _peek(head)
        if pos < size and 0xA0 <= head[pos] <= 0xBF:
            end = pos + 1 + (head[pos] & 0x1F)
            if end < size and 0xA0 <= head[end] <= 0xBF:
                stop = end + 1 + (head[end] & 0x1F)
                if stop <= size:
                    return FrameHead(
                        head[1], call_id, head[pos + 1:end].decode("utf-8", "replace"),
                        head[end + 1:stop].decode("utf-8", "replace"),
                    )
    return _peek(head)


def _peek(head: bytes) -> FrameHead:
    if not head:
        raise FrameRefused("empty frame")
    b = head[0]
    if 0x90 <= b <= 0x9F:
        length, pos = b & 0x0F, 1
    elif b == 0xDC:
        length, pos = _uint(head, 1, 2), 3
    elif b == 0xDD:
        length, pos = _uint(head, 1, 4), 5
    else:
        raise FrameRefused("a frame must be an array [kind, id, ...]")
    if length < 2 or pos >= len(head):
        raise FrameRefused("a frame must be an array [kind, id, ...]")
    kind, pos = _read_int(head, pos)
    if pos >= len(head):
        raise FrameRefused("truncated frame head")
    call_id, pos = _read_int(head, pos)
    op = first = None
    if length > 2 and pos < len(head):
        op, pos = _read_str(head, pos)
        if op is not None and length > 3 and pos < len(head):
            first, pos = _read_str(head, pos)
    return FrameHead(kind, call_id, op, first)


_FIXED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}  # bin/str: length width
_EXT_FIXED = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
_EXT_VAR = {0xC7: 1, 0xC8: 2, 0xC9: 4}
_SCALAR = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2,
           0xD2: 4, 0xD3: 8}


def measure(buf: bytes, *, max_depth: int = MAX_DEPTH, max_objects: int = MAX_OBJECTS) -> None:
    """Walk one msgpack value without building it; raise `FrameRefused` past the bounds."""
    pos, objects, end = 0, 0, len(buf)
    remaining = [1]
    while remaining:
        if remaining[-1] == 0:
            remaining.pop()
            continue
        remaining[-1] -= 1
        if pos >= end:
            raise FrameRefused("truncated frame")
        b = buf[pos]
        pos += 1
        objects += 1
        if objects > max_objects:
            raise FrameRefused(
                f"frame holds more than {max_objects} values; send the data in smaller parts"
            )
        n = -1
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
            continue
        if b <= 0x8F:
            n = (b & 0x0F) * 2
        elif b <= 0x9F:
            n = b & 0x0F
        elif b <= 0xBF:
            pos += b & 0x1F
        elif b in _FIXED:
            w = _FIXED[b]
            pos += w + _uint(buf, pos, w)
        elif b in _SCALAR:
            pos += _SCALAR[b]
        elif b in _EXT_FIXED:
            pos += 1 + _EXT_FIXED[b]
        elif b in _EXT_VAR:
            w = _EXT_VAR[b]
            pos += w + 1 + _uint(buf, pos, w)
        elif b in (0xDC, 0xDE):
            n = _uint(buf, pos, 2) * (2 if b == 0xDE else 1)
            pos += 2
        elif b in (0xDD, 0xDF):
            n = _uint(buf, pos, 4) * (2 if b == 0xDF else 1)
            pos += 4
        else:
            raise FrameRefused(f"undecodable byte 0x{b:02x} in frame")
        if n > 0:
            if n > end - pos:
                raise FrameRefused("a container claims more values than the frame holds")
            remaining.append(n)
            if len(remaining) > max_depth + 1:
                raise FrameRefused(
                    f"frame nests deeper than {max_depth} levels; flatten the data"
                )


class FrameGuard:
    """The kernel's checks on frames from one worker (see the module docstring).

    ``data_ops`` are the CALL operations allowed frames up to ``max_frame`` bytes;
    ``precheck(op, first)`` raises (e.g. `PermissionDenied`) for a call that must not
    be decoded.
    """

    def __init__(
        self,
        *,
        max_frame: int,
        data_kinds: frozenset[int],
        data_ops: frozenset[str],
        call_kind: int,
        precheck: Callable[[str | None, str | None], None],
    ) -> None:
        self.max_frame = max_frame
        self._data_kinds = data_kinds
        self._data_ops = data_ops
        self._call_kind = call_kind
        self._precheck = precheck

    def cap(self, head: FrameHead) -> int:
        """The largest size a frame with this head may have."""
        if head.kind in self._data_kinds:
            return self.max_frame
        if head.kind == self._call_kind and head.op in self._data_ops:
            return self.max_frame
        return CONTROL_FRAME

    def check_head(self, head: FrameHead, size: int) -> None:
        """Size cap and call check, from the head alone; raises to refuse."""
        cap = self.cap(head)
        if size > cap:
            what = f"{head.op} call" if head.op else f"frame of kind {head.kind}"
            raise FrameRefused(
                f"{what} of {size} bytes exceeds its {cap} byte limit; send less data "
                f"per call (max_frame_mb in [plugins.<name>.sandbox] raises the data limit)"
            )
        if head.kind == self._call_kind:
            self._precheck(head.op, head.first)

    def quick_data(self, view: memoryview, start: int, size: int) -> bool:
        """Whether a frame is an answer (RESULT/ACK) within the data cap, judged from its
        first two bytes: the hot path, which needs no full head."""
        return (
            size <= self.max_frame and size > 2 and view[start] & 0xF0 == 0x90
            and view[start + 1] in self._data_kinds
        )

    def check_body(self, body: bytes) -> None:
        """Bound the structure of a frame that passed `check_head`; raises to refuse.

        A frame of at most `MAX_DEPTH` bytes cannot nest deeper or hold more values than
        allowed: callers may skip it.
        """
        size = len(body)
        if size > SCAN_ABOVE or size - len(body.translate(None, _CONTAINER_BYTES)) > MAX_DEPTH:
            measure(body)
