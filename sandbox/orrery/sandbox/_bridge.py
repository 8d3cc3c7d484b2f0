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
from ._forward import forwarded_headers, request_row
from ._guard import CALL_SCOPES, DATA_OPS, FrameGuard, FrameHead, FrameRefused
from ._logs import LogGate
from ._process import WorkerLost, WorkerProcess
from ._protocol import ACK, CALL, DELIVER, HTTP, LOG, RESULT, SVC_CALL, encode_error
from ._storage_calls import StorageCalls
from .errors import SandboxError, WorkerCrashed

if TYPE_CHECKING:
    from ._permissions import Permissions

__all__ = ["AUDIT_TOPIC", "Bridge"]

#: Topic of the audit event published for every denied call.
AUDIT_TOPIC = "orrery.audit.denied"
#: Workers an event may see die before it is failed back to the bus.
MAX_ATTEMPTS = 3
#: Calls from one worker the kernel runs at a time before it counts as flooding.
MAX_IN_FLIGHT = 1024
log = logging.getLogger("orrery.sandbox")


class Bridge(StorageCalls):
    """Answers a worker's CALL frames on the kernel's ``ctx``."""

    def __init__(
        self, name: str, ctx: Context, permissions: Permissions, *, max_frame: int = 16 << 20,
        log_rate: float = 100.0, log_burst: int = 500, log_line_max: int = 8192,
    ) -> None:
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
        self._headers = forwarded_headers(permissions.grants.get("http.header", ()))
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
        self.guard = FrameGuard(
            max_frame=max_frame, data_kinds=frozenset({RESULT, ACK}), data_ops=DATA_OPS,
            call_kind=CALL, precheck=self._precheck,
        )
        self.refused = 0
        self.logs = LogGate(
            ctx.log, rate=log_rate, burst=log_burst, line_max=log_line_max, name=name
        )
        #: Why a worker ended (set by the host): the reason a dead letter carries.
        self.exit_reason: Callable[[WorkerProcess], str] | None = None
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
        self.logs.flush()
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

    def _precheck(self, op: str | None, first: str | None) -> None:
        """Refuse a call from its name (and first argument) before decoding the rest."""
        if op not in self._ops and op not in self._sync_ops:
            raise FrameRefused(f"unknown operation {op!r}")
        scope = CALL_SCOPES.get(op)
        if scope is None:
            return
        action, takes_resource = scope
        if not takes_resource:
            self.check(action)
        elif first is not None:  # a resource too long for the head is checked after decoding
            self.check(action, first)

    def on_refused(self, worker: WorkerProcess, head: FrameHead, error: Exception) -> None:
        """A frame the guard refused: answer the call with the error, keep serving."""
        self.refused += 1
        if self.refused <= 10 or self.refused % 1000 == 0:
            log.warning(
                "sandboxed plugin %r: refused a frame from its worker (%d so far): %s",
                self.name, self.refused, error,
            )
        if head.kind == CALL and head.call_id:
            self._answer(worker, head.call_id, False, error)

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
            self.logs.write(frame[2], frame[3] if len(frame) > 3 else "")
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
        if self.denied <= 10 or self.denied % 1000 == 0:
            # A worker can ask for denied things as fast as it can write: the audit
            # event records each one, the log only a sample.
            log.warning(
                "sandboxed plugin %r denied %s %s (%d denials so far)",
                self.name, action, resource, self.denied,
            )
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

    async def _to_worker(
        self, b: Binding, kind: int, *args: Any, attempts: int = 0, retry: bool = True,
        event: str | None = None,
    ) -> Any:
        """Send to the worker bound to ``b``; retried on the next worker if this one dies.

        Without ``retry`` (bus events) a death is this attempt's failure: the bus retries
        the event and dead-letters it after its attempts, so a poison event costs three
        workers, not the plugin. With it, a call in flight in `MAX_ATTEMPTS` dying
        workers is given up on.
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
                return await worker.request(kind, b.worker_id, *args, event=event)
            except WorkerLost:
                # It died before answering: the next worker re-binds.
                if self.worker is worker and not b.dropped:
                    b.bound.clear()
                if not retry:
                    raise await self._died(worker, b) from None
                if attempts >= MAX_ATTEMPTS:
                    raise SandboxError(
                        f"sandboxed plugin {self.name!r}: the worker died {attempts} times "
                        f"while handling this on {b.signature[1]!r}; giving up on it",
                        plugin=self.name,
                    ) from None

    async def _died(self, worker: WorkerProcess, b: Binding) -> WorkerCrashed:
        """The error an event's attempt fails with when the worker died handling it."""
        await worker.wait(2.0)
        reason = self.exit_reason(worker) if self.exit_reason is not None else "it died"
        return WorkerCrashed(
            self.name, f"the worker died while handling an event on {b.signature[1]!r}: {reason}"
        )

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
                    return await worker.request(
                        DELIVER, b.worker_id, event_to_wire(event), event=event.id
                    )
                except WorkerLost:
                    if self.worker is worker and not b.dropped:
                        b.bound.clear()
                    raise await self._died(worker, b) from None
            return await self._to_worker(
                b, DELIVER, event_to_wire(event), retry=False, event=event.id
            )

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
            return await self._to_worker(b, DELIVER, journal_row(event), event=str(event.id))

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
            row = request_row(request, body, self._headers)
            return await self._to_worker(b, HTTP, row)

        self.ctx.http.route(method, path, handle)
