"""The kernel harness: a real in-process kernel plus helpers to assert on it.

Its fixtures (``orrery_kernel``, ``orrery_plugins_dir``) reach a plugin's test suite
through the pytest plugin ``orrery`` (entry point ``pytest11``), without imports::

    async def test_replies(orrery_kernel):
        async with orrery_kernel(MyPlugin, config={"greeting": "hi"}) as k:
            k.assert_state("my-plugin", "active")
            assert await k.request("greet.hello", {"who": "x"}) == {"text": "hi, x"}

            waiter = k.expect("greet.sent")
            await k.publish("greet.send", {"who": "y"})
            [event] = await waiter.wait()

The kernel is the real one (bus, lifecycle, store in a temporary directory). This module
imports the kernel lazily, inside the fixtures, so ``import orrery.sdk`` stays light.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from orrery.sdk import Clock, Event, Plugin, subject_matches, validate_pattern

from ._http import DaemonApp, HttpResult

if TYPE_CHECKING:
    from orrery.kernel import Kernel  # noqa: TID251 - typing only

__all__ = [
    "EventWaiter",
    "HarnessFactory",
    "KernelHarness",
    "matches",
    "orrery_kernel",
    "orrery_plugins_dir",
]


class EventWaiter:
    """Collects events matching a pattern from the moment it is created."""

    def __init__(
        self,
        harness: KernelHarness,
        pattern: str,
        where: Callable[[Event], bool] | None,
        count: int,
    ) -> None:
        self._where = where
        self._count = count
        self.events: list[Event] = []
        self._done = asyncio.get_running_loop().create_future()
        self._sub = harness.kernel.bus.subscribe(validate_pattern(pattern), self._on_event)
        self._pattern = pattern

    def _on_event(self, event: Event) -> None:
        if self._where is not None and not self._where(event):
            return
        self.events.append(event)
        if len(self.events) >= self._count and not self._done.done():
            self._done.set_result(None)

    async def wait(self, timeout: float = 5.0) -> list[Event]:
        """The first ``count`` matching events; fails the test after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except TimeoutError:
            raise AssertionError(
                f"expected {self._count} event(s) on {self._pattern!r} within {timeout:g}s, "
                f"got {len(self.events)}: {[e.type for e in self.events]}"
            ) from None
        finally:
            self._sub.unsubscribe()
        return self.events[: self._count]


class KernelHarness:
    """A running kernel plus helpers for asserting on plugins and events."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._daemon: DaemonApp | None = None

    async def http(
        self,
        method: str,
        path: str,
        json: Any = None,
        query: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        """Send a request to the real daemon app over this kernel (loopback HTTP, with
        the API token): ``r = await k.http("GET", "/v1/plugins/x/items", query={...})``,
        then ``r.status``, ``r.json()``, ``r.text``, ``r.headers``."""
        if self._daemon is None:
            self._daemon = DaemonApp(self.kernel)
        return await self._daemon.request(method, path, json=json, query=query, headers=headers)

    async def aclose(self) -> None:
        """Stop the HTTP listener, if `http` started one (the fixture calls this)."""
        if self._daemon is not None:
            await self._daemon.close()
            self._daemon = None

    @property
    def bus(self) -> Any:
        return self.kernel.bus

    @property
    def clock(self) -> Clock:
        """The kernel's clock (what plugins get as ``ctx.clock``)."""
        clock: Clock = self.kernel.clock
        return clock

    @property
    def plugins(self) -> Mapping[str, Any]:
        return self.kernel.plugins

    async def publish(self, topic: str, data: Any = None, **kwargs: Any) -> Event:
        event: Event = await self.kernel.bus.publish(topic, data, **kwargs)
        return event

    async def request(self, topic: str, data: Any = None, *, timeout: float = 5.0) -> Any:
        return await self.kernel.bus.request(topic, data, timeout=timeout)

    def expect(
        self, pattern: str, *, count: int = 1, where: Callable[[Event], bool] | None = None
    ) -> EventWaiter:
        """Start collecting events on ``pattern`` now; ``await waiter.wait()`` later."""
        return EventWaiter(self, pattern, where, count)

    def service(self, key: Any) -> Any:
        """A service some plugin provides (raises `ServiceNotFound`)."""
        return self.kernel.services.get(key)

    def assert_state(self, name: str, state: str) -> None:
        """Fail with the plugin's error message unless plugin ``name`` is in ``state``."""
        info = self.kernel.plugins.get(name)
        if info is None:
            raise AssertionError(f"no plugin {name!r}; known: {sorted(self.kernel.plugins)}")
        if info.state != state:
            detail = f": {info.error}" if info.error else ""
            raise AssertionError(f"plugin {name!r} is {info.state}, expected {state}{detail}")

    async def reload(self, name: str) -> Any:
        return await self.kernel.reload(name)


#: The type of the ``orrery_kernel`` fixture, to annotate tests with.
HarnessFactory = Callable[..., Any]


@pytest.fixture
def orrery_plugins_dir(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write plugin files for a test: ``path = orrery_plugins_dir("p.py", source)``.

    The files land in one temporary folder, ``path.parent``, to pass as a plugins dir.
    """
    folder = tmp_path / "orrery-plugins"
    folder.mkdir()

    def write(filename: str, source: str) -> Path:
        path = folder / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    return write


@pytest.fixture
def orrery_kernel(tmp_path: Path) -> HarnessFactory:
    """``async with orrery_kernel(*plugin_classes, config=..., **kernel_options) as k``.

    Starts a real kernel with the given Plugin classes (and, with ``plugins_dirs=``,
    folder plugins) in a temporary state directory. ``config`` may be a plugin's own
    settings (when one class is given) or a whole orrery.toml-shaped mapping with a
    ``plugins`` table. Entry-point discovery is off unless ``entry_points=True``.
    ``clock=ManualClock()`` makes the plugins' ``ctx.clock`` move only when told to.
    """
    counter = iter(range(1_000_000))

    @asynccontextmanager
    async def factory(
        *plugins: type[Plugin], config: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncIterator[KernelHarness]:
        from orrery.kernel import Kernel  # noqa: TID251 - lazy: see the module docstring

        options.setdefault("state_dir", tmp_path / f"orrery-state-{next(counter)}")
        options.setdefault("entry_points", False)
        options.setdefault("watch", False)
        options.setdefault("env", {})
        kernel = Kernel(plugins=plugins, config=_whole_config(plugins, config), **options)
        async with kernel:
            harness = KernelHarness(kernel)
            try:
                yield harness
            finally:
                await harness.aclose()

    return factory


def _whole_config(
    plugins: tuple[type[Plugin], ...], config: Mapping[str, Any] | None
) -> dict[str, Any]:
    if config is None:
        return {}
    if len(plugins) == 1 and not {"plugins", "kernel", "bus", "storage"} & set(config):
        from orrery.kernel.plugins import class_candidate  # noqa: TID251 - lazy

        return {"plugins": {class_candidate(plugins[0]).name: dict(config)}}
    return dict(config)


def matches(pattern: str, event: Event) -> bool:
    """Whether ``event``'s topic matches ``pattern`` (for ``where=`` filters)."""
    return subject_matches(pattern, event.type)
