"""The kernel side of a worker's Context: permission checks and bindings.

Subscriptions, services and routes the plugin registers are made on the kernel's real
``ctx`` once and outlive a worker crash: while the worker restarts, deliveries wait, and
the restarted plugin re-binds them by registering the same thing again. An event that
was sent to a worker which died before acknowledging it is sent again to the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orrery.sdk import Context, Event, PermissionDenied

from ._binding import Binding, RemoteService, event_to_wire, journal_row
from ._process import WorkerLost, WorkerProcess
from ._protocol import CALL, DELIVER, HTTP, LOG, RESULT, SVC_CALL, encode_error
from .errors import SandboxError

if TYPE_CHECKING:
    from ._permissions import Permissions

__all__ = ["AUDIT_TOPIC", "Bridge"]

#: Topic of the audit event published for every denied call.
AUDIT_TOPIC = "orrery.audit.denied"
_MISSING = object()
#: Workers an event may see die before it is failed back to the bus.
MAX_ATTEMPTS = 3
#: Calls from one worker the kernel runs at a time before it counts as flooding.
MAX_IN_FLIGHT = 1024
log = logging.getLogger("orrery.sandbox")


class Bridge:
    """Answers a worker's CALL frames on the kernel's ``ctx``."""

    def __init__(self, name: str, ctx: Context, permissions: Permissions) -> None:
        self.name = name
        self.ctx = ctx
        self.permissions = permissions
        self.worker: WorkerProcess | None = None
        self.bindings: dict[tuple[Any, ...], Binding] = {}
        self._by_worker_id: dict[int | str, Binding] = {}
        self._seen: dict[tuple[Any, ...], int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False
        self.denied = 0
        self._ops: dict[str, Callable[..., Any]] = {
            "bus.publish": self._publish,
            "bus.request": self._request,
            "bus.drain": self._drain,
            "services.call": self._service_call,
            "store.get": self._store_get,
            "store.put": self._store_put,
            "store.delete": self._store_delete,
            "store.scan": self._store_scan,
            "journal.append": self._journal_append,
            "journal.read": self._journal_read,
            "journal.version": self._journal_version,
            "journal.read_all": self._journal_read_all,
            "journal.save_snapshot": self._journal_save_snapshot,
            "journal.load_snapshot": self._journal_load_snapshot,
            "journal.truncate": self._journal_truncate,
        }
        self._sync_ops: dict[str, Callable[..., Any]] = {
            "bus.subscribe": self._subscribe,
            "bus.unsubscribe": self._unsubscribe,
            "journal.subscribe": self._journal_subscribe,
            "services.provide": self._provide,
            "services.get": self._service_get,
            "http.route": self._route,
        }

    # -- worker lifecycle --------------------------------------------------------------

    def attach(self, worker: WorkerProcess) -> None:
        """A new worker incarnation starts: it will re-bind what it registers."""
        self.worker = worker
        self._by_worker_id.clear()
        self._seen.clear()
        for b in self.bindings.values():
            b.worker_id = None
            b.bound.clear()

    def started(self) -> None:
        """The worker's plugin started: what it did not register again is gone."""
        for b in list(self.bindings.values()):
            if b.worker_id is None:
                self._drop(b)

    def detach(self) -> None:
        """The worker died: deliveries wait for the next one."""
        for b in self.bindings.values():
            b.worker_id = None
            b.bound.clear()

    async def drain(self) -> None:
        """Deliver what is queued for the kernel-side subscriptions, taking nothing new."""
        subs = [b.kernel_sub for b in self.bindings.values() if b.kernel_sub is not None]
        await asyncio.gather(*(s.drain() for s in subs))

    async def close(self) -> None:
        """Release everything on the kernel side (plugin stopped or failed)."""
        self.closed = True
        for b in list(self.bindings.values()):
            self._drop(b)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _drop(self, b: Binding) -> None:
        b.dropped = True
        b.bound.set()
        self.bindings.pop(b.signature, None)
        if b.kernel_sub is not None:
            with contextlib.suppress(Exception):
                b.kernel_sub.unsubscribe()

    def _bind(self, signature: tuple[Any, ...], worker_id: int | str) -> tuple[Binding, bool]:
        """Bind ``signature`` to the worker's id; True when it is new on the kernel side."""
        n = self._seen.get(signature, 0)
        self._seen[signature] = n + 1
        key = (*signature, n)
        b = self.bindings.get(key)
        if b is None:
            b = Binding(key)
            self.bindings[key] = b
            fresh = True
        else:
            fresh = False
        b.worker_id = worker_id
        self._by_worker_id[worker_id] = b
        b.bound.set()
        return b, fresh

    # -- frames from the worker --------------------------------------------------------

    def on_frame(self, worker: WorkerProcess, frame: list[Any]) -> None:
        kind = frame[0]
        if kind == CALL:
            call_id, op, args = frame[1], frame[2], frame[3:]
            sync = self._sync_ops.get(op)
            if sync is not None:
                try:
                    value = sync(*args)
                except Exception as e:
                    if not call_id:  # nobody waits for the answer: say it in the plugin's log
                        self.ctx.log.error("%s refused: %s", op, e)
                    self._answer(worker, call_id, False, e)
                else:
                    self._answer(worker, call_id, True, value)
                return
            handler = self._ops.get(op)
            if handler is None:
                worker.kill(f"protocol error: unknown operation {op!r}")
                return
            if len(self._tasks) >= MAX_IN_FLIGHT:
                # A worker that floods the kernel with calls is treated as a crash.
                worker.kill(f"more than {MAX_IN_FLIGHT} calls in flight")
                return
            task = asyncio.get_running_loop().create_task(self._run(worker, call_id, handler, args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == LOG:
            level = frame[2] if isinstance(frame[2], int) else logging.INFO
            self.ctx.log.log(level, "%s", frame[3])
        else:
            worker.kill(f"protocol error: unexpected frame kind {kind!r}")

    async def _run(
        self, worker: WorkerProcess, call_id: int, handler: Callable[..., Any], args: list[Any]
    ) -> None:
        try:
            value = await handler(*args)
        except Exception as e:
            self._answer(worker, call_id, False, e)
        else:
            self._answer(worker, call_id, True, value)

    def _answer(self, worker: WorkerProcess, call_id: int, ok: bool, value: Any) -> None:
        if not call_id:
            return
        with contextlib.suppress(WorkerLost):
            try:
                worker.send([RESULT, call_id, ok, value if ok else encode_error(value)])
            except (TypeError, ValueError) as e:
                worker.send([RESULT, call_id, False, encode_error(e)])

    # -- permissions -----------------------------------------------------------------

    def check(self, action: str, resource: str = "") -> None:
        """Raise `PermissionDenied` (and publish the audit event) unless allowed."""
        if self.permissions.allows(action, resource):
            return
        self.denied += 1
        log.warning("sandboxed plugin %r denied %s %s", self.name, action, resource)
        task = asyncio.get_running_loop().create_task(self._audit(action, resource))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        raise PermissionDenied(self.name, action, resource)

    async def _audit(self, action: str, resource: str) -> None:
        try:
            await self.ctx.bus.publish(
                AUDIT_TOPIC, {"plugin": self.name, "action": action, "resource": resource}
            )
        except Exception:  # noqa: BLE001 - the audit trail must not break the host
            log.exception("could not publish the audit event for plugin %r", self.name)

    # -- delivery to the worker --------------------------------------------------------

    async def _to_worker(self, b: Binding, kind: int, *args: Any, attempts: int = 0) -> Any:
        """Send to the worker bound to ``b``; retried on the next worker if this one dies.

        An event that was in flight in `MAX_ATTEMPTS` dying workers is a poison message:
        it is failed back to the bus (which dead-letters it) instead of killing more.
        """
        while True:
            if not b.bound.is_set():
                await b.bound.wait()
            if b.dropped or self.closed:
                raise SandboxError(
                    f"sandboxed plugin {self.name!r} no longer handles {b.signature[1]!r}",
                    plugin=self.name,
                )
            worker = self.worker
            assert worker is not None
            attempts += 1
            try:
                return await worker.request(kind, b.worker_id, *args)
            except WorkerLost:
                if attempts >= MAX_ATTEMPTS:
                    raise SandboxError(
                        f"sandboxed plugin {self.name!r}: the worker died {attempts} times "
                        f"while handling this on {b.signature[1]!r}; giving up on it",
                        plugin=self.name,
                    ) from None
                # It died before answering: wait until the next worker re-binds, resend.
                if self.worker is worker and not b.dropped:
                    b.bound.clear()

    async def call_service(self, key: str, method: str, args: list[Any], kw: dict[str, Any]) -> Any:
        b = self.bindings.get(("svc", key, 0))
        if b is None:
            raise SandboxError(f"sandboxed plugin {self.name!r} no longer provides {key!r}",
                               plugin=self.name)
        return await self._to_worker(b, SVC_CALL, method, args, kw)

    # -- bus -------------------------------------------------------------------------

    async def _publish(self, topic: str, data: Any, key: str | None, headers: Any) -> Any:
        self.check("bus.publish", topic)
        event = await self.ctx.bus.publish(topic, data, key=key, headers=headers)
        return event_to_wire(event)

    async def _request(self, topic: str, data: Any, timeout: float) -> Any:
        self.check("bus.request", topic)
        return await self.ctx.bus.request(topic, data, timeout=timeout)

    def _subscribe(self, sub_id: int, pattern: str, group: str | None, durable: str | None) -> None:
        self.check("bus.subscribe", pattern)
        b, fresh = self._bind(("bus", pattern, group, durable), sub_id)
        if not fresh:
            return

        async def deliver(event: Event) -> Any:
            worker = self.worker
            if b.bound.is_set() and not b.dropped and worker is not None:
                # Fast path: one coroutine frame less on the hot path.
                try:
                    return await worker.request(DELIVER, b.worker_id, event_to_wire(event))
                except WorkerLost:
                    if self.worker is worker and not b.dropped:
                        b.bound.clear()
                return await self._to_worker(b, DELIVER, event_to_wire(event), attempts=1)
            return await self._to_worker(b, DELIVER, event_to_wire(event))

        try:
            b.kernel_sub = self.ctx.bus.subscribe(pattern, deliver, group=group, durable=durable)
        except Exception:
            # Refused (a bound, a name): keep nothing of it on the kernel side.
            self._by_worker_id.pop(sub_id, None)
            self._drop(b)
            raise

    def _unsubscribe(self, sub_id: int) -> None:
        b = self._by_worker_id.pop(sub_id, None)
        if b is not None:
            self._drop(b)

    async def _drain(self, sub_id: int) -> None:
        b = self._by_worker_id.pop(sub_id, None)
        if b is not None and b.kernel_sub is not None:
            await b.kernel_sub.drain()
            self._drop(b)

    def _journal_subscribe(self, sub_id: int, stream: str, from_version: int) -> None:
        self.check("journal")
        b, fresh = self._bind(("journal", stream, from_version), sub_id)
        if not fresh:
            return

        async def deliver(event: Any) -> Any:
            return await self._to_worker(b, DELIVER, journal_row(event))

        b.kernel_sub = self.ctx.journal.subscribe(stream, deliver, from_version=from_version)

    # -- services, http ----------------------------------------------------------------

    def _provide(self, key: str) -> None:
        self.check("services.provide", key)
        _, fresh = self._bind(("svc", key), key)
        if fresh:
            self.ctx.services.provide(key, RemoteService(self, key))

    def _service_get(self, key: str) -> bool:
        self.check("services.get", key)
        self.ctx.services.get(key)
        return True

    async def _service_call(
        self, key: str, method: str, args: list[Any], kw: dict[str, Any]
    ) -> Any:
        self.check("services.get", key)
        if method.startswith("_"):
            raise AttributeError(f"service {key!r}: private attribute {method!r} is not callable")
        result = getattr(self.ctx.services.get(key), method)(*args, **kw)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        return result

    def _route(self, route_id: int, method: str, path: str) -> None:
        self.check("http.route")
        b, fresh = self._bind(("http", f"{method} {path}"), route_id)
        if not fresh:
            return

        async def handle(request: Any) -> Any:
            try:
                body = await request.json()
            except Exception:  # noqa: BLE001 - no or invalid body: the handler sees None
                body = None
            row = {
                "method": request.method, "path": request.path, "params": dict(request.params),
                "query": dict(request.query), "headers": dict(request.headers),
                "principal": request.principal, "body": body,
            }
            return await self._to_worker(b, HTTP, row)

        self.ctx.http.route(method, path, handle)

    # -- store, journal ----------------------------------------------------------------

    async def _store_get(self, key: str) -> list[Any]:
        self.check("store")
        value = await self.ctx.store.get(key, _MISSING)
        return [False, None] if value is _MISSING else [True, value]

    async def _store_put(self, key: str, value: Any) -> None:
        self.check("store")
        await self.ctx.store.put(key, value)

    async def _store_delete(self, key: str) -> bool:
        self.check("store")
        return await self.ctx.store.delete(key)

    async def _store_scan(self, prefix: str) -> list[list[Any]]:
        self.check("store")
        return [[k, v] async for k, v in self.ctx.store.scan(prefix)]

    async def _journal_append(self, stream: str, events: list[Any], expected: int | None) -> int:
        self.check("journal")
        return await self.ctx.journal.append(stream, events, expected_version=expected)

    async def _journal_read(self, stream: str, from_version: int) -> list[dict[str, Any]]:
        self.check("journal")
        return [journal_row(e) async for e in self.ctx.journal.read(stream, from_version)]

    async def _journal_version(self, stream: str) -> int:
        self.check("journal")
        return await self.ctx.journal.version(stream)

    async def _journal_read_all(self, position: int, until: int | None) -> list[dict[str, Any]]:
        self.check("journal")
        return [journal_row(e) async for e in self.ctx.journal.read_all(position, until)]

    async def _journal_save_snapshot(self, stream: str, version: int, state: Any) -> None:
        self.check("journal")
        await self.ctx.journal.save_snapshot(stream, version, state)

    async def _journal_load_snapshot(self, stream: str, max_version: int | None) -> Any:
        self.check("journal")
        found = await self.ctx.journal.load_snapshot(stream, max_version)
        return None if found is None else list(found)

    async def _journal_truncate(self, stream: str, before_version: int) -> int:
        self.check("journal")
        return await self.ctx.journal.truncate(stream, before_version)
