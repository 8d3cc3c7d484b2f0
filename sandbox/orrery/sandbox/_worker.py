"""The worker process: loads one plugin under the isolation layers and serves the host.

Started by the host as ``python -I -S -B -c <bootstrap> FD PATH...`` (see `_launch`).
It imports only the SDK, this package's worker modules and the plugin.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import itertools
import os
import socket
import sys
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from orrery.sdk import Plugin, PluginError

from ._mounts import ENV_MOUNTS, read_only_root
from ._permissions import Permissions, parse_permissions
from ._protocol import (
    ACK,
    CALL,
    DELIVER,
    HOOK,
    HTTP,
    INIT,
    PING,
    PONG,
    RESULT,
    SVC_CALL,
    Channel,
    ChannelClosed,
    encode_error,
)
from ._spin import SpinWait
from ._worker_context import WorkerContext, WorkerJournalEvent, event_from_wire
from ._worker_http import WorkerHttpRequest
from ._worker_load import apply_layers, decode_error, load_plugin_class, validate_config

__all__ = ["WorkerRuntime", "main"]

_SYNC_TIMEOUT = 30.0
# Frames read in one turn of the event loop at most (see `_on_readable`).
_INLINE_TURNS = 32
# Handler results that are certainly not awaitable: skips inspect on the hot path.
_PLAIN = frozenset({type(None), dict, list, str, int, float, bool, bytes, tuple})


class WorkerRuntime:
    """Owns the channel, the plugin instance and what the plugin registered."""

    def __init__(self, sock: socket.socket) -> None:
        self.channel = Channel(sock)
        self.name = "?"
        self.permissions: Permissions = parse_permissions([])
        self.ids = itertools.count(1)
        self.subs: dict[int, Any] = {}
        self.services: dict[str, Any] = {}
        self.routes: dict[int, Callable[[Any], Any]] = {}
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.plugin: Plugin | None = None
        self.ctx: WorkerContext | None = None
        self.fork_attempts = 0
        self.is_child = False
        self.spin = SpinWait(0)
        self._inbox: deque[list[Any]] = deque()
        self._dispatching = False
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Answers still being worked out by a coroutine (tasks leave ``_tasks`` only
        #: a loop iteration after they finish, too late to decide about spinning).
        self._answering = 0
        self._closed: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.channel.on_frame = self._inbox.append
        os.register_at_fork(before=self._before_fork, after_in_child=self._after_fork_child)

    # -- faults ----------------------------------------------------------------------

    def _before_fork(self) -> None:
        self.fork_attempts += 1

    def _after_fork_child(self) -> None:
        # A child of the plugin must never speak the protocol: it closes its copy of the
        # socket (the parent's stays open and registered) and exits as soon as plugin
        # code hands control back to us.
        self.is_child = True
        self.channel.close()

    def exit_if_child(self) -> None:
        if self.is_child:
            os._exit(0)

    def check_fatal(self, exc: BaseException | None) -> None:
        """Exit at once on resource exhaustion: the host restarts a fresh worker."""
        seen = 0
        while exc is not None and seen < 8:
            if isinstance(exc, MemoryError):
                os._exit(70)
            if isinstance(exc, OSError):
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    os._exit(71)
                if exc.errno == errno.EAGAIN and self.fork_attempts:
                    os._exit(72)
            exc = exc.__cause__ or exc.__context__
            seen += 1

    def check_task(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled():
            self.check_fatal(task.exception())

    # -- sending ---------------------------------------------------------------------

    def send(self, frame: list[Any]) -> None:
        try:
            self.channel.send(frame)
        except (TypeError, ValueError, OverflowError) as e:
            # Data the plugin returned cannot be encoded: report that instead.
            if frame[0] in (RESULT, ACK) and len(frame) > 2:
                self.channel.send([frame[0], frame[1], False, encode_error(e)])
            else:
                raise

    def reply(self, kind: int, call_id: int, ok: bool, value: Any) -> None:
        self.exit_if_child()
        try:
            self.send([kind, call_id, ok, value if ok else encode_error(value)])
        except ChannelClosed:
            pass

    async def call(self, op: str, *args: Any) -> Any:
        """Ask the host to do ``op``; raises what the host's answer says."""
        assert self.loop is not None
        call_id = next(self.ids)
        fut = self.loop.create_future()
        self.pending[call_id] = fut
        self.send([CALL, call_id, op, *args])
        return await fut

    def call_sync(self, op: str, *args: Any) -> Any:
        """Blocking round trip for the few SDK calls that are synchronous."""
        call_id = next(self.ids)
        self.channel.send([CALL, call_id, op, *args])
        self.channel.flush_blocking(_SYNC_TIMEOUT)
        answer: list[Any] = []

        def collect(frame: list[Any]) -> None:
            if frame[0] == RESULT and frame[1] == call_id:
                answer.append(frame)
            else:
                self._inbox.append(frame)

        self.channel.on_frame = collect
        try:
            while not answer:
                if not self.channel.wait_readable(_SYNC_TIMEOUT):
                    raise TimeoutError(f"the host did not answer {op} within {_SYNC_TIMEOUT}s")
                self.channel.read_ready()
        finally:
            self.channel.on_frame = self._inbox.append
            if self._inbox and self.loop is not None:
                self.loop.call_soon(self._drain_inbox)
        frame = answer[0]
        if not frame[2]:
            raise decode_error(frame[3])
        return frame[3]

    # -- receiving -------------------------------------------------------------------

    def _on_readable(self) -> None:
        self.spin.woke()
        # Frames that arrive while we spin are read right here, a bounded number of
        # times so the loop's other callbacks and the plugin's tasks keep their turn.
        for _ in range(_INLINE_TURNS):
            try:
                self.channel.read_ready()
            except ChannelClosed:
                self._shutdown()
                return
            except ValueError:
                os._exit(73)
            self._drain_inbox()
            if self._answering or not self._stay_awake():
                return

    def _stay_awake(self) -> bool:
        """Once every answer has gone out, spin briefly for the next frame (`SpinWait`);
        True when one arrived."""
        return not self.channel.sending and self.spin.wait(self.channel.has_data)

    def _drain_inbox(self) -> None:
        if self._dispatching:
            return  # the outer dispatch loop picks them up
        self._dispatching = True
        try:
            inbox = self._inbox
            while inbox:
                self._dispatch(inbox.popleft())
        finally:
            self._dispatching = False

    def _dispatch(self, frame: list[Any]) -> None:
        kind = frame[0]
        if kind == DELIVER:
            self._deliver(frame[1], frame[2], frame[3])
        elif kind == RESULT:
            fut = self.pending.pop(frame[1], None)
            if fut is not None and not fut.done():
                if frame[2]:
                    fut.set_result(frame[3])
                else:
                    fut.set_exception(decode_error(frame[3]))
        elif kind == PING:
            self.send([PONG, frame[1]])
        elif kind == HOOK:
            self._answer(RESULT, frame[1], self._hook, frame[2], frame[3])
        elif kind == HTTP:
            self._answer(RESULT, frame[1], self._http, frame[2], frame[3])
        elif kind == SVC_CALL:
            self._answer(RESULT, frame[1], self._service, *frame[2:6])
        else:
            os._exit(73)

    def _answer(self, kind: int, call_id: int, fn: Callable[..., Any], *args: Any) -> None:
        """Work out the answer to ``call_id`` in a task: ``await fn(*args)``."""
        assert self.loop is not None
        self._answering += 1
        task = self.loop.create_task(self._run(kind, call_id, fn, *args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _deliver(self, call_id: int, sub_id: int, payload: Any) -> None:
        sub = self.subs.get(sub_id)
        if sub is None:
            self.reply(ACK, call_id, False, LookupError(f"no subscription {sub_id}"))
            return
        try:
            arg = WorkerJournalEvent(payload) if sub.journal else event_from_wire(payload)
            result = sub.handler(arg)
        except Exception as e:
            self.check_fatal(e)
            self.reply(ACK, call_id, False, e)
            return
        if type(result) not in _PLAIN and inspect.isawaitable(result):
            self._answer(ACK, call_id, _await, result)
        else:
            self.reply(ACK, call_id, True, result)

    async def _run(self, kind: int, call_id: int, fn: Callable[..., Any], *args: Any) -> None:
        try:
            value = await fn(*args)
        except Exception as e:
            self.check_fatal(e)
            self.reply(kind, call_id, False, e)
        else:
            self.reply(kind, call_id, True, value)
        finally:
            self._answering -= 1
        if not self._answering:
            self._stay_awake()

    async def _hook(self, hook: str, kwargs: Mapping[str, Any]) -> Any:
        impl = getattr(self.plugin, hook, None)
        if impl is None:
            return None
        result = impl(**self._hook_args(impl, dict(kwargs)))
        if inspect.isawaitable(result):
            result = await result
        if hook == "orrery_stop" and self.ctx is not None:
            await self.ctx.cancel_tasks()
        return result

    def _hook_args(self, impl: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        # As pluggy does: pass only the arguments the implementation declares.
        kwargs["ctx"] = self.ctx
        params = inspect.signature(impl).parameters
        return {k: v for k, v in kwargs.items() if k in params}

    async def _http(self, route_id: int, request: Mapping[str, Any]) -> Any:
        handler = self.routes[route_id]
        return await _await(handler(WorkerHttpRequest(request)))

    async def _service(self, key: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        impl = self.services[key]
        if method.startswith("_"):
            raise AttributeError(f"service {key!r} does not expose private {method!r}")
        return await _await(getattr(impl, method)(*args, **kwargs))

    # -- lifecycle -------------------------------------------------------------------

    def read_init(self) -> list[Any]:
        """Block until the host's INIT frame arrives."""
        frames: list[list[Any]] = []
        self.channel.on_frame = frames.append
        while not frames:
            self.channel.wait_readable(None)
            self.channel.read_ready()
        self.channel.on_frame = self._inbox.append
        self._inbox.extend(frames[1:])
        if frames[0][0] != INIT:
            os._exit(73)
        return frames[0]

    async def serve(self, init: list[Any], applied: dict[str, Any]) -> None:
        """Load and start the plugin, then answer the host until it closes the channel."""
        loop = self.loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        channel = self.channel
        fd = channel.fd

        def watch_write(on: bool) -> None:
            if on:
                loop.add_writer(fd, channel.flush)
            else:
                loop.remove_writer(fd)

        channel.watch_write = watch_write
        loop.add_reader(fd, self._on_readable)
        loop.set_exception_handler(self._loop_exception)
        try:
            info = await self._start(init[2])
        except BaseException as e:
            self.check_fatal(e)
            self.reply(RESULT, init[1], False, e)
            channel.flush_blocking(5.0)
            os._exit(74)
        info["layers"] = applied
        self.reply(RESULT, init[1], True, info)
        if self._inbox:
            loop.call_soon(self._drain_inbox)
        await self._closed

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.check_fatal(context.get("exception"))
        loop.default_exception_handler(context)

    async def _start(self, setup: Mapping[str, Any]) -> dict[str, Any]:
        self.name = setup["name"]
        self.spin = SpinWait(setup.get("spin_us", 0))
        self.permissions = parse_permissions(setup["permissions"])
        cls = load_plugin_class(setup["target"])
        if getattr(cls, "orrery_handover", None) is not None:
            raise PluginError(
                f"plugin {self.name!r} implements orrery_handover, but it runs sandboxed: "
                f"live objects cannot cross the process boundary. Return plain data from "
                f"orrery_snapshot instead, or set sandbox = False",
                plugin=self.name,
            )
        config = validate_config(cls, setup.get("config") or {})
        self.plugin = cls()
        self.ctx = WorkerContext(
            self, config, node_id=setup.get("node_id") or "", restored=setup.get("state")
        )
        if setup.get("state") is not None:
            await self._hook("orrery_restore", {"state": setup["state"]})
        await self._hook("orrery_start", {})
        return {"pid": os.getpid(), "class": f"{cls.__module__}:{cls.__qualname__}"}

    def _shutdown(self) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)


async def _await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``argv[0]`` is the inherited socket's fd number."""
    args = sys.argv[1:] if argv is None else argv
    if os.getpid() == 1:
        _serve_as_init(int(args[0]))
    sock = socket.socket(fileno=int(args[0]))
    rt = WorkerRuntime(sock)
    init = rt.read_init()
    try:
        applied = apply_layers(init[2])
    except OSError as e:
        # Never run plugin code with privileges left: refuse to start, saying why.
        rt.reply(RESULT, init[1], False, OSError(f"cannot drop privileges: {e}"))
        rt.channel.flush_blocking(5.0)
        os._exit(74)
    try:
        asyncio.run(rt.serve(init, applied))
    finally:
        # Plugin threads must not keep a stopped worker alive.
        os._exit(0)


def _serve_as_init(fd: int) -> None:
    """Started as pid 1 of its own pid namespace (unshare --fork): stay as init.

    The worker runs in a forked child; init reaps every orphan and, when the worker
    ends, exits with its status, a signal as 128+n the way bubblewrap reports it (unshare
    itself cannot pass on a SIGKILL and would say only "exited with code 1").
    """
    plan = os.environ.pop(ENV_MOUNTS, None)
    if plan is not None:
        try:
            import json

            spec = json.loads(plan)
            read_only_root(spec["writable"], spec["masks"], spec["binds"])
        except OSError as e:
            # Landlock still limits writes; the host reports what this line says.
            print(f"orrery sandbox: cannot make the root read-only: {e}", file=sys.stderr)
    worker = os.fork()
    if worker == 0:
        return
    os.close(fd)  # the host must see end of stream when the worker dies, not when init does
    from ._privileges import drop_privileges

    drop_privileges(None)  # init only reaps: it needs no capability
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == worker:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    main()

