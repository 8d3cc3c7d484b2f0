"""The framed protocol between the host and a worker.

A frame is a 4-byte big-endian length followed by one msgpack array
``[kind, id, *args]``. ``id`` pairs a request with its `RESULT`; ``0`` means no reply is
wanted. The same `Channel` runs on both sides: the host on an asyncio loop, the worker
on its own loop and, for the few calls the SDK makes synchronous, blocking.

Kept free of asyncio imports and anything heavy: the worker imports it first.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import traceback
from collections.abc import Callable
from typing import Any

import msgspec

from ._guard import (
    ANSWER_DECODER,
    CALL_DECODERS,
    HEAD_BYTES,
    MAX_DEPTH,
    FrameGuard,
    FrameHead,
    FrameRefused,
    peek,
)

__all__ = [
    "ACK",
    "CALL",
    "DELIVER",
    "EXIT_CODES",
    "HOOK",
    "HTTP",
    "INIT",
    "LOG",
    "MAX_FRAME",
    "PING",
    "PONG",
    "READY",
    "RESULT",
    "SVC_CALL",
    "Channel",
    "ChannelClosed",
    "encode_error",
]

# host -> worker
INIT = 1  # [INIT, id, setup-dict]                      -> RESULT
HOOK = 2  # [HOOK, id, hook-name, kwargs]               -> RESULT
DELIVER = 3  # [DELIVER, id, sub-id, event-or-journal]  -> ACK
HTTP = 4  # [HTTP, id, route-id, request-dict]          -> RESULT
SVC_CALL = 5  # [SVC_CALL, id, service-id, method, args, kwargs] -> RESULT
PING = 6  # [PING, id]                                  -> PONG
# worker -> host
READY = 10  # [READY, 0, pid]: the worker runs and waits for INIT
CALL = 11  # [CALL, id, op, *args]                      -> RESULT (when id != 0)
LOG = 12  # [LOG, 0, level, message]
ACK = 13  # [ACK, id, ok, reply-or-error]
PONG = 14  # [PONG, id]
# both ways
RESULT = 20  # [RESULT, id, ok, value-or-error]

#: Exit codes the worker uses for faults it detects itself, and what they mean.
EXIT_CODES: dict[int, str] = {
    70: "memory exhausted (MemoryError)",
    71: "out of file descriptors",
    72: "process limit reached (fork bomb?)",
    73: "the host broke the protocol",
    74: "the plugin failed to start",
}

MAX_FRAME = 64 * 1024 * 1024
_RECV = 256 * 1024

_HEADER = struct.Struct(">I")
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()
_ANSWER_DECODE = ANSWER_DECODER.decode


class ChannelClosed(ConnectionError):
    """The other side closed the channel (or it broke)."""


def encode_error(exc: BaseException) -> list[Any]:
    """An exception as ``[type-name, message, attrs, traceback]`` for a RESULT/ACK frame."""
    attrs: dict[str, Any] = {}
    for name in ("plugin", "action", "resource", "topic", "timeout", "key", "stream",
                 "expected", "actual", "errno", "path"):
        value = getattr(exc, name, None)
        if isinstance(value, str | int | float):
            attrs[name] = value
    tb = "".join(traceback.format_exception(exc)) if exc.__traceback__ else ""
    return [type(exc).__name__, str(exc), attrs, tb]


class Channel:
    """Frames over a connected stream socket.

    ``on_frame`` receives each decoded frame (a list). Sending never blocks: what the
    socket does not take is buffered and flushed when it is writable, via the
    ``watch_write`` callback the owner provides (an event loop's add_writer).
    """

    __slots__ = (
        "_buf",
        "_consumed",
        "_skip",
        "guard",
        "on_refused",
        "_rview",
        "_closed",
        "_out",
        "_poller",
        "_sendbuf",
        "fd",
        "on_frame",
        "sock",
        "watch_write",
    )

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self._buf = bytearray()
        self._rview = memoryview(bytearray(_RECV))
        self._consumed = 0
        self._out = bytearray()
        self._sendbuf = bytearray(4)
        self._closed = False
        self._poller: select.poll | None = None
        self.on_frame: Callable[[list[Any]], None] = _drop
        self.watch_write: Callable[[bool], None] = lambda on: None
        #: Host side only: checks a frame's head and structure before it is decoded;
        #: what it refuses goes to ``on_refused(head, error)`` and is skipped.
        self.guard: FrameGuard | None = None
        self.on_refused: Callable[[FrameHead, Exception], None] = _refused
        self._skip = 0

    @property
    def closed(self) -> bool:
        return self._closed

    # -- sending ---------------------------------------------------------------------

    def send(self, frame: list[Any] | tuple[Any, ...]) -> None:
        """Queue one frame; raises `ChannelClosed` once the channel is closed."""
        if self._closed:
            raise ChannelClosed("the channel is closed")
        buf = self._sendbuf
        _encoder.encode_into(frame, buf, 4)
        size = len(buf) - 4
        if size > MAX_FRAME:
            del buf[4:]
            raise ValueError(f"frame of {size} bytes exceeds the {MAX_FRAME} byte limit")
        _HEADER.pack_into(buf, 0, size)
        if self._out:
            self._out += buf
            return
        try:
            sent = self.sock.send(buf)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as e:
            self.close()
            raise ChannelClosed(str(e)) from e
        if sent < len(buf):
            self._out += memoryview(buf)[sent:]
            self.watch_write(True)

    def flush(self) -> None:
        """Write buffered bytes the socket takes now (call when writable)."""
        if not self._out:
            self.watch_write(False)
            return
        try:
            sent = self.sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self._out[:sent]
        if not self._out:
            self.watch_write(False)

    def flush_blocking(self, timeout: float | None) -> None:
        """Write everything buffered, waiting for the socket (worker's sync calls)."""
        while self._out and not self._closed:
            _, writable, _ = select.select([], [self.fd], [], timeout)
            if not writable:
                raise TimeoutError("the host does not read the channel")
            self.flush()

    # -- receiving -------------------------------------------------------------------

    def read_ready(self) -> None:
        """Read what is available and hand complete frames to ``on_frame``.

        Raises `ChannelClosed` at end of stream and `ValueError` on a malformed frame.
        """
        try:
            # recv_into a reused buffer: recv(n) would allocate n bytes per call, and a
            # large n goes through mmap/munmap every time.
            n = self.sock.recv_into(self._rview)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.close()
            raise ChannelClosed(str(e)) from e
        if not n:
            self.close()
            raise ChannelClosed("end of stream")
        buf = self._buf
        if buf:
            buf += self._rview[:n]
            view = memoryview(buf)
            try:
                self._parse(view, len(buf))
            finally:
                view.release()
                del buf[: self._consumed]
        else:
            self._parse(self._rview, n)

    def _parse(self, view: memoryview, end: int) -> None:
        """Decode the complete frames in ``view[:end]``; ``_consumed`` says how far."""
        pos = 0
        on_frame = self.on_frame
        decode = _decoder.decode
        guard = self.guard
        try:
            while end > pos:
                if self._skip:
                    # The rest of a refused frame: dropped as it arrives, never kept.
                    n = min(self._skip, end - pos)
                    pos += n
                    self._skip -= n
                    continue
                if end - pos < 4:
                    break
                (size,) = _HEADER.unpack_from(view, pos)
                start = pos + 4
                head: FrameHead | None = None
                quick = False
                if guard is not None and end - start >= 2:
                    quick = guard.quick_data(view, start, size)
                if guard is not None and not quick:
                    need = min(size, HEAD_BYTES)
                    if end - start < need:
                        break
                    try:
                        head = peek(bytes(view[start:start + need]))
                        guard.check_head(head, size)
                    except Exception as e:  # noqa: BLE001 - refused: answered, skipped
                        if head is None:
                            self.close()
                            raise ValueError(f"undecodable frame: {e}") from e
                        pos = self._refuse(head, e, start, size, end)
                        continue
                elif guard is None and size > MAX_FRAME:
                    self.close()
                    raise ValueError(f"frame of {size} bytes exceeds the {MAX_FRAME} byte limit")
                pos = start + size
                if pos > end:
                    pos = start - 4
                    break
                if guard is not None and size > MAX_DEPTH:
                    try:
                        # A copy: an exception must not keep an export of the buffer alive.
                        guard.check_body(bytes(view[start:pos]))
                    except FrameRefused as e:
                        head = head or peek(bytes(view[start:min(pos, start + HEAD_BYTES)]))
                        self.on_refused(head, e)
                        continue
                try:
                    if guard is None:
                        frame = decode(view[start:pos])
                    elif quick:
                        frame = _ANSWER_DECODE(view[start:pos])
                    else:
                        assert head is not None
                        typed = CALL_DECODERS.get(head.op or "") if head.kind == CALL else None
                        frame = (typed.decode if typed else decode)(view[start:pos])
                except (msgspec.DecodeError, RecursionError) as e:
                    if guard is not None:
                        head = head or peek(bytes(view[start:min(pos, start + HEAD_BYTES)]))
                        self.on_refused(head, FrameRefused(f"undecodable frame: {e}"))
                        continue
                    self.close()
                    raise ValueError(f"undecodable frame: {e}") from e
                if type(frame) not in (list, tuple) or len(frame) < 2:
                    self.close()
                    raise ValueError(f"a frame must be an array [kind, id, ...], got {frame!r}")
                on_frame(frame)
        finally:
            # Keep the unread tail of the reused receive buffer, even when a callback raised.
            self._consumed = pos
            if view is self._rview and pos < end:
                self._buf += view[pos:end]

    def _refuse(self, head: FrameHead, error: Exception, start: int, size: int, end: int) -> int:
        """Report a refused frame and skip its bytes; returns the position after them."""
        self.on_refused(head, error)
        if start + size <= end:
            return start + size
        self._skip = start + size - end
        return end

    @property
    def sending(self) -> bool:
        """Whether bytes wait for the socket to become writable."""
        return bool(self._out)

    @property
    def backlog(self) -> int:
        """Bytes waiting for the socket to become writable."""
        return len(self._out)

    def has_data(self) -> bool:
        """Whether a read would find data now (never blocks)."""
        poller = self._poller
        if poller is None:
            poller = self._poller = select.poll()
            poller.register(self.fd, select.POLLIN)
        return bool(poller.poll(0))

    def wait_readable(self, timeout: float | None) -> bool:
        """Block until data can be read (worker's sync calls)."""
        try:
            readable, _, _ = select.select([self.fd], [], [], timeout)
        except InterruptedError:
            return False
        return bool(readable)

    def close(self) -> None:
        """Close the socket; further sends raise `ChannelClosed`."""
        if self._closed:
            return
        self._closed = True
        try:
            self.sock.close()
        except OSError as e:  # pragma: no cover - close of a broken socket
            if e.errno != errno.EBADF:
                raise


def _drop(frame: list[Any]) -> None:
    """Placeholder frame callback until the owner installs its own."""


def _refused(head: FrameHead, error: Exception) -> None:
    """Placeholder refusal callback until the owner installs its own."""


def socketpair() -> tuple[socket.socket, socket.socket]:
    """A connected pair; the second end is inheritable, for the worker."""
    host_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    os.set_inheritable(worker_end.fileno(), True)
    return host_end, worker_end
