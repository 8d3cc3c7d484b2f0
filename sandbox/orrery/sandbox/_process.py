"""One worker incarnation as the host sees it: process, channel and calls in flight."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
from collections.abc import Callable
from typing import Any

from ._guard import FrameGuard, FrameHead
from ._protocol import ACK, EXIT_CODES, PING, PONG, RESULT, Channel, ChannelClosed, socketpair

__all__ = ["WorkerAnswerRefused", "WorkerLost", "WorkerProcess"]


class WorkerLost(Exception):
    """The worker died (or was killed) with the call in flight; internal."""


class WorkerAnswerRefused(ValueError):
    """The worker's answer broke a frame limit and was not decoded."""


class WorkerProcess:
    """Spawns a worker, sends it frames and resolves its answers."""

    def __init__(
        self,
        on_frame: Callable[[WorkerProcess, list[Any]], None],
        on_error: Callable[[list[Any]], BaseException],
        guard: FrameGuard | None = None,
        on_refused: Callable[[WorkerProcess, FrameHead, Exception], None] | None = None,
    ) -> None:
        self._on_frame = on_frame
        self._decode_error = on_error
        self._guard = guard
        self._on_refused = on_refused
        self._ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.proc: asyncio.subprocess.Process | None = None
        self.channel: Channel | None = None
        self.exited: asyncio.Future[str] | None = None
        self.kill_reason: str | None = None
        self.pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch: asyncio.Task[None] | None = None
        self.kill_extra: Callable[[], None] | None = None
        #: Events (DELIVER frames) sent and not acknowledged yet: call id -> event id.
        self.delivering: dict[int, str] = {}
        #: Ids of the events in flight when the channel was lost: the crash is counted
        #: against those events (see `SandboxHost`).
        self.lost_events: frozenset[str] = frozenset()

    async def spawn(
        self,
        build_argv: Callable[[int], tuple[list[str], dict[str, str], Callable[[], None]]],
        stderr_path: str,
    ) -> None:
        """Start the process; ``build_argv(fd)`` gives argv, env and the preexec hook."""
        loop = self._loop = asyncio.get_running_loop()
        self.exited = loop.create_future()
        host_end, worker_end = socketpair()
        try:
            argv, env, preexec = build_argv(worker_end.fileno())
            with open(stderr_path, "ab") as stderr:
                self.proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                    pass_fds=(worker_end.fileno(),),
                    env=env,
                    preexec_fn=preexec,
                    start_new_session=True,
                )
        except BaseException as e:
            host_end.close()
            self.exited.set_result(f"could not be spawned: {e}")
            raise
        finally:
            worker_end.close()
        self.pid = self.proc.pid
        channel = self.channel = Channel(host_end)
        fd = channel.fd

        def watch_write(on: bool) -> None:
            if on:
                loop.add_writer(fd, channel.flush)
            else:
                loop.remove_writer(fd)

        channel.watch_write = watch_write
        channel.on_frame = self._frame
        channel.guard = self._guard
        channel.on_refused = self._refused
        loop.add_reader(fd, self._readable)
        self._watch = loop.create_task(self._wait_exit(), name=f"orrery-sandbox-wait-{self.pid}")

    @property
    def alive(self) -> bool:
        return self.exited is not None and not self.exited.done()

    def _readable(self) -> None:
        assert self.channel is not None
        try:
            self.channel.read_ready()
        except ChannelClosed:
            self._drop_channel()
        except ValueError as e:
            self.kill(f"protocol error: {e}")

    def _frame(self, frame: list[Any]) -> None:
        kind = frame[0]
        if kind == RESULT or kind == ACK:
            fut = self.pending.pop(frame[1], None)
            if kind == ACK:
                self.delivering.pop(frame[1], None)
            if fut is not None and not fut.done():
                if frame[2]:
                    fut.set_result(frame[3])
                else:
                    fut.set_exception(self._decode_error(frame[3]))
        elif kind == PONG:
            fut = self.pending.pop(frame[1], None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        else:
            self._on_frame(self, frame)

    def _refused(self, head: FrameHead, error: Exception) -> None:
        if head.kind in (RESULT, ACK):
            # An answer to one of our requests that we will not decode: the request fails.
            fut = self.pending.pop(head.call_id, None)
            self.delivering.pop(head.call_id, None)
            if fut is not None and not fut.done():
                fut.set_exception(WorkerAnswerRefused(str(error)))
            return
        if self._on_refused is not None:
            self._on_refused(self, head, error)

    def send(self, frame: list[Any]) -> None:
        """Send a frame that needs no answer; raises `WorkerLost` when gone."""
        if self.channel is None or self.channel.closed:
            raise WorkerLost()
        try:
            self.channel.send(frame)
        except ChannelClosed as e:
            raise WorkerLost() from e

    def request(self, kind: int, *args: Any, event: str | None = None) -> asyncio.Future[Any]:
        """Send ``[kind, id, *args]``; the future resolves with the answer.

        ``event`` names the event a DELIVER carries, for `lost_events`.
        """
        assert self._loop is not None
        call_id = next(self._ids)
        fut: asyncio.Future[Any] = self._loop.create_future()
        self.send([kind, call_id, *args])
        self.pending[call_id] = fut
        if event is not None:
            self.delivering[call_id] = event
        return fut

    async def ping(self, timeout: float) -> bool:
        """Whether the worker's event loop answers within ``timeout``."""
        try:
            await asyncio.wait_for(self.request(PING), timeout)
        except WorkerLost:
            return True  # it died: the exit watcher reports why
        except TimeoutError:
            return False
        return True

    def kill(self, reason: str) -> None:
        """Kill the worker and everything it started; the first reason sticks."""
        if self.kill_reason is None and self.alive:
            self.kill_reason = reason
        if self.pid is not None and self.alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self.kill_extra is not None:
            self.kill_extra()

    def close_channel(self) -> None:
        """Close our end: a healthy worker exits on end of stream."""
        self._drop_channel()

    def _drop_channel(self) -> None:
        channel = self.channel
        if channel is not None and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(channel.fd)
                self._loop.remove_writer(channel.fd)
            channel.close()
        self._fail_pending()

    def _fail_pending(self) -> None:
        if self.delivering:
            self.lost_events = frozenset(self.delivering.values())
            self.delivering.clear()
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(WorkerLost())
                fut.exception()  # nobody may be waiting any more: mark it retrieved

    async def _wait_exit(self) -> None:
        assert self.proc is not None and self.exited is not None
        code = await self.proc.wait()
        if self.kill_extra is not None:
            self.kill_extra()  # a fork bomb's children outlive the worker itself
        self._drop_channel()
        if not self.exited.done():
            self.exited.set_result(self.kill_reason or describe_exit(code))

    async def wait(self, timeout: float) -> bool:
        """Wait for the process to exit; False on timeout."""
        if self.exited is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), timeout)
        except TimeoutError:
            return False
        return True


def describe_exit(code: int) -> str:
    """A sentence for a worker's exit status (bubblewrap reports signals as 128+n)."""
    if code in EXIT_CODES:
        return EXIT_CODES[code]
    signum = -code if code < 0 else code - 128 if code > 128 else 0
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        hint = {
            "SIGSEGV": " (segmentation fault)",
            "SIGXCPU": " (CPU time limit)",
            "SIGKILL": " (killed: memory limit or supervisor)",
        }.get(name, "")
        return f"killed by {name}{hint}"
    return f"exited with code {code}"
