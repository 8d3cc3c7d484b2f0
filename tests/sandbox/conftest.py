"""Fixtures for the sandbox tests: a small real-enough kernel-side Context.

`KernelCtx` stands in for the kernel's per-plugin Context until tests run against the
real kernel: an in-memory bus with per-subscriber ordered delivery through a bounded
queue, request/reply, dict-backed services and store, a list-backed journal and a
route table. Swap `make_ctx` for the kernel's context factory to run the same tests.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from orrery.sandbox import (
    PluginTarget,
    SandboxHost,
    SandboxLimits,
    detect_layers,
    parse_permissions,
    read_declaration,
)
from orrery.sdk import (
    Event,
    NoResponders,
    RequestTimeout,
    ServiceKey,
    ServiceNotFound,
    new_event_id,
    subject_matches,
)

#: Attempts the stand-in bus gives a handler, as the kernel's ``[bus] max_attempts``.
MAX_ATTEMPTS = 3


class MemorySubscription:
    def __init__(self, bus: MemoryBus, pattern: str, handler: Any, group: str | None,
                 durable: str | None) -> None:
        self.bus = bus
        self._pattern = pattern
        self.handler = handler
        self._group = group
        self._durable = durable
        self._active = True
        self.queue: asyncio.Queue[tuple[Event, asyncio.Future[Any] | None]] = asyncio.Queue(1000)
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.failures: list[BaseException] = []

    @property
    def pattern(self) -> str:
        return self._pattern

    @property
    def group(self) -> str | None:
        return self._group

    @property
    def durable(self) -> str | None:
        return self._durable

    @property
    def active(self) -> bool:
        return self._active

    async def _run(self) -> None:
        while True:
            event, reply = await self.queue.get()
            try:
                # As the kernel's bus does: a failing handler is retried, then given up.
                for attempt in range(1, MAX_ATTEMPTS + 1):
                    try:
                        result = self.handler(event)
                        if asyncio.iscoroutine(result):
                            result = await result
                        break
                    except Exception:  # noqa: BLE001 - retried, then recorded
                        if attempt == MAX_ATTEMPTS:
                            raise
            except Exception as e:  # noqa: BLE001 - a failing handler affects no one else
                self.failures.append(e)
                if reply is not None and not reply.done():
                    reply.set_exception(e)
            else:
                self.bus.handled.append((self._pattern, getattr(event, "id", "")))
                if reply is not None and not reply.done() and result is not None:
                    reply.set_result(result)
            finally:
                self.queue.task_done()

    def unsubscribe(self) -> None:
        self._active = False
        self.task.cancel()
        if self in self.bus.subs:
            self.bus.subs.remove(self)

    async def drain(self) -> None:
        await self.queue.join()
        self.unsubscribe()


class MemoryBus:
    def __init__(self, source: str = "test") -> None:
        self.subs: list[MemorySubscription] = []
        self.published: list[Event] = []
        self.handled: list[tuple[str, str]] = []
        self.source = source

    def _event(self, topic: str, data: Any, key: str | None, headers: Any,
               replyto: str | None = None) -> Event:
        return Event(id=new_event_id(), type=topic, source=f"orrery://test/{self.source}",
                     time_ns=time.time_ns(), subject=key, data=data, headers=headers,
                     replyto=replyto)

    async def publish(self, topic: str, data: Any = None, *, key: str | None = None,
                      headers: Any = None) -> Event:
        event = self._event(topic, data, key, headers)
        self.published.append(event)
        for sub in list(self.subs):
            if subject_matches(sub.pattern, topic):
                await sub.queue.put((event, None))
        return event

    def subscribe(self, pattern: str, handler: Any, *, group: str | None = None,
                  durable: str | None = None) -> MemorySubscription:
        sub = MemorySubscription(self, pattern, handler, group, durable)
        self.subs.append(sub)
        return sub

    async def request(self, topic: str, data: Any = None, *, timeout: float = 5.0) -> Any:
        targets = [s for s in self.subs if subject_matches(s.pattern, topic)]
        if not targets:
            raise NoResponders(topic)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        event = self._event(topic, data, None, None, replyto="_reply")
        for sub in targets:
            await sub.queue.put((event, reply))
        try:
            return await asyncio.wait_for(reply, timeout)
        except TimeoutError:
            raise RequestTimeout(topic, timeout) from None

    async def close(self) -> None:
        for sub in list(self.subs):
            sub.unsubscribe()


class MemoryStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def put(self, key: str, value: Any) -> None:
        self.data[key] = value

    async def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    async def scan(self, prefix: str = "") -> AsyncIterator[tuple[str, Any]]:
        for key in sorted(self.data):
            if key.startswith(prefix):
                yield key, self.data[key]


@dataclass
class MemoryJournalEvent:
    id: str
    stream: str
    version: int
    position: int
    type: str
    data: Any
    time_ns: int


class MemoryJournal:
    def __init__(self) -> None:
        self.streams: dict[str, list[MemoryJournalEvent]] = {}
        self.position = itertools.count(1)
        self.subs: list[tuple[str, MemorySubscription]] = []
        self.snapshots: dict[str, list[tuple[int, Any]]] = {}

    async def version(self, stream: str) -> int:
        return len(self.streams.get(stream, []))

    async def read_all(
        self, from_position: int = 0, until_time_ns: int | None = None
    ) -> AsyncIterator[MemoryJournalEvent]:
        rows = sorted((r for s in self.streams.values() for r in s), key=lambda r: r.position)
        for row in rows:
            if row.position >= from_position:
                yield row

    async def save_snapshot(self, stream: str, version: int, state: Any) -> None:
        self.snapshots.setdefault(stream, []).append((version, state))

    async def load_snapshot(self, stream: str, max_version: int | None = None) -> Any:
        found = [s for s in self.snapshots.get(stream, [])
                 if max_version is None or s[0] <= max_version]
        return max(found, key=lambda s: s[0]) if found else None

    async def truncate(self, stream: str, before_version: int) -> int:
        rows = self.streams.get(stream, [])
        keep = [r for r in rows[:-1] if r.version >= before_version] + rows[-1:]
        self.streams[stream] = keep
        return len(rows) - len(keep)

    async def append(self, stream: str, events: Any, expected_version: int | None = None) -> int:
        rows = self.streams.setdefault(stream, [])
        for data in events:
            row = MemoryJournalEvent(new_event_id(), stream, len(rows) + 1,
                                     next(self.position), "event", data, time.time_ns())
            rows.append(row)
            for name, sub in self.subs:
                if name == stream and sub.active:
                    await sub.queue.put((row, None))  # type: ignore[arg-type]
        return len(rows)

    async def read(self, stream: str, from_version: int = 0) -> AsyncIterator[MemoryJournalEvent]:
        for row in self.streams.get(stream, []):
            if row.version > from_version:
                yield row

    def subscribe(self, stream: str, handler: Any, *, from_version: int = 0) -> Any:
        sub = MemorySubscription(MemoryBus(), stream, handler, None, None)
        self.subs.append((stream, sub))
        for row in self.streams.get(stream, []):
            if row.version > from_version:
                sub.queue.put_nowait((row, None))  # type: ignore[arg-type]
        return sub


class MemoryServices:
    def __init__(self, registry: dict[str, Any]) -> None:
        self.registry = registry

    def provide(self, key: ServiceKey[Any] | str, impl: Any) -> None:
        name = key.name if isinstance(key, ServiceKey) else key
        self.registry[name] = impl

    def get(self, key: ServiceKey[Any] | str) -> Any:
        name = key.name if isinstance(key, ServiceKey) else key
        if name not in self.registry:
            raise ServiceNotFound(name)
        return self.registry[name]


class MemoryHttp:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[Any], Any]] = {}

    def route(self, method: str, path: str, handler: Callable[[Any], Any]) -> None:
        self.routes[(method, path)] = handler


@dataclass
class FakeRequest:
    method: str
    path: str
    body: Any = None
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    principal: str = "tester"

    async def json(self) -> Any:
        return self.body


class KernelCtx:
    """The kernel-side Context of one plugin."""

    def __init__(self, name: str, bus: MemoryBus, registry: dict[str, Any]) -> None:
        self.name = name
        self.config: Any = {}
        self.log = logging.getLogger(f"orrery.plugins.{name}")
        self.bus = bus
        self.services = MemoryServices(registry)
        self.store = MemoryStore()
        self.journal = MemoryJournal()
        self.http = MemoryHttp()
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> Awaitable[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        return task


class Kernel:
    """A shared bus and service registry, and a factory for per-plugin contexts."""

    def __init__(self) -> None:
        self.bus = MemoryBus()
        self.registry: dict[str, Any] = {}
        self.hosts: list[SandboxHost] = []

    def make_ctx(self, name: str) -> KernelCtx:
        return KernelCtx(name, self.bus, self.registry)

    async def sandbox(
        self,
        path: Path,
        *,
        name: str | None = None,
        permissions: list[str] | None = None,
        config: dict[str, Any] | None = None,
        start: bool = True,
        **limits: Any,
    ) -> SandboxHost:
        name = name or path.stem
        defaults: dict[str, Any] = {
            "memory_mb": 256, "hook_timeout": 5.0, "backoff_base": 0.01, "backoff_max": 0.05,
            "max_restarts": 3, "window_s": 60.0, "ping_interval": 0.5,
        }
        defaults.update(limits)
        target = PluginTarget.from_path(path)
        if permissions is None:
            # As the kernel does: read the declaration without running the plugin.
            permissions = list(read_declaration(target).permissions)
        host = SandboxHost(
            name, target, self.make_ctx(name),  # type: ignore[arg-type]
            permissions=parse_permissions(permissions),
            limits=SandboxLimits(**defaults), config=config or {},
        )
        self.hosts.append(host)
        if start:
            await host.start()
        return host

    async def close(self) -> None:
        for host in reversed(self.hosts):
            await host.stop()
        await self.bus.close()


@pytest.fixture
async def kernel() -> AsyncIterator[Kernel]:
    k = Kernel()
    yield k
    await k.close()


@pytest.fixture
def plugin_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a plugin module; the body is dedented and prefixed with the SDK imports."""

    def write(name: str, body: str) -> Path:
        folder = tmp_path / "plugins"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.py"
        path.write_text(
            "from orrery.sdk import Plugin, hookimpl\n" + textwrap.dedent(body).lstrip()
        )
        return path

    return write


def _need_layer(name: str) -> None:
    status = detect_layers()[name]
    if not status.available:
        pytest.skip(status.detail)


@pytest.fixture
def need_layer() -> Callable[[str], None]:
    """``need_layer(name)`` skips the test when this host lacks that isolation layer."""
    return _need_layer


ECHO_SOURCE = '''
class Echo(Plugin):
    permissions = ["bus.subscribe:echo.>"]

    @hookimpl
    async def orrery_start(self, ctx):
        ctx.bus.subscribe("echo.>", lambda event: {"echo": event.data})

    @hookimpl
    def orrery_health(self):
        return {"ok": True}
'''


@pytest.fixture
def echo_plugin(plugin_file: Callable[[str, str], Path]) -> Path:
    """A plugin answering requests on ``echo.>`` with ``{"echo": data}``."""
    return plugin_file("echo", ECHO_SOURCE)


@pytest.fixture
def fake_request() -> type[FakeRequest]:
    """The request class a kernel passes to plugin route handlers (a stand-in)."""
    return FakeRequest


#: Sandbox modes a test can run in: what namespaces (if any) wrap the worker.
SANDBOX_MODES = ("bubblewrap", "unshare", "none")


@pytest.fixture(params=SANDBOX_MODES)
def sandbox_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per sandbox mode this machine offers: bubblewrap, the unshare
    fallback, and no namespaces at all (Landlock, seccomp and the rest still apply)."""
    import shutil

    from orrery.sandbox import LayerStatus, _launcher

    mode = request.param
    found = dict(detect_layers())
    if mode == "bubblewrap":
        if found["namespaces"].mechanism != "bubblewrap":
            pytest.skip(f"bubblewrap is not usable here: {found['namespaces'].detail}")
        return mode
    if mode == "unshare":
        if not shutil.which("unshare"):
            pytest.skip("unshare is not installed")
        found["namespaces"] = LayerStatus("namespaces", True, "unshare", "forced by the test")
    else:
        found["namespaces"] = LayerStatus("namespaces", False, "", "turned off by the test")
    monkeypatch.setattr(_launcher, "detect_layers", lambda: found)
    return mode
