"""Watching plugin folders: file events become debounced load/reload/unload requests.

watchdog delivers events on its own thread; they are handed to the event loop, mapped
to the plugin entry they affect (a top-level ``*.py`` file or package directory), and
debounced per entry. A writer closing the file (inotify close-write) ends a burst of
saves almost at once; other events wait for a longer quiet period, so editors that
truncate and write in several steps cause one reload, not several.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from orrery.kernel.errors import KernelError
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

__all__ = ["FolderWatcher"]

log = logging.getLogger("orrery.kernel.reload")

_IGNORED_PARTS = ("__pycache__",)
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", ".tmp", "~")


class _Forwarder(FileSystemEventHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, sink: Callable[[str, str], None]) -> None:
        self._loop = loop
        self._sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        for raw in paths:
            if raw:
                path = raw.decode() if isinstance(raw, bytes) else raw
                self._loop.call_soon_threadsafe(self._sink, path, event.event_type)


class FolderWatcher:
    """Calls ``on_change(entry_path)`` for every settled change under the folders."""

    def __init__(
        self,
        folders: Iterable[Path],
        on_change: Callable[[Path], Awaitable[Any]],
        *,
        settle: float = 0.002,
        quiet: float = 0.05,
    ) -> None:
        self._folders = [Path(f).resolve() for f in folders]
        self._on_change = on_change
        self._settle = settle
        self._quiet = quiet
        self._observer: Any = None
        self._timers: dict[Path, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Changes to one entry are applied one after another, in order.
        self._queues: dict[Path, asyncio.Lock] = {}

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        observer = Observer()
        forwarder = _Forwarder(loop, self._seen)
        for folder in self._folders:
            observer.schedule(forwarder, str(folder), recursive=True)
        observer.daemon = True
        try:
            observer.start()
        except OSError as e:
            observer.stop()
            raise KernelError(
                f"cannot watch plugin folders {', '.join(map(str, self._folders))}: {e}; "
                f"check that they exist and can be read (or start with watching off)"
            ) from e
        self._observer = observer
        log.info("watching %s", ", ".join(map(str, self._folders)) or "no folders")

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._observer is not None:
            self._observer.stop()
            await asyncio.to_thread(self._observer.join, 5)
            self._observer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)

    @property
    def pending(self) -> int:
        """Changes seen but not yet applied (waiting for their quiet period)."""
        return len(self._timers)

    async def settle(self) -> None:
        """Return once every change being applied now has been applied."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def entry_for(self, raw: str) -> Path | None:
        """The plugin entry a changed path belongs to, or None if it is not plugin code."""
        path = Path(raw)
        if any(part in _IGNORED_PARTS for part in path.parts) or path.name.endswith(
            _IGNORED_SUFFIXES
        ):
            return None
        for folder in self._folders:
            try:
                relative = path.relative_to(folder)
            except ValueError:
                continue
            if not relative.parts or relative.parts[0].startswith(("_", ".")):
                return None
            top = folder / relative.parts[0]
            if len(relative.parts) == 1:
                # A top-level file is an entry when it is Python; a top-level directory
                # is one when it is (or was) a package.
                return top if top.suffix == ".py" or not top.suffix else None
            return top if path.suffix == ".py" else None
        return None

    def _seen(self, raw: str, kind: str) -> None:
        entry = self.entry_for(raw)
        if entry is None:
            return
        timer = self._timers.pop(entry, None)
        if timer is not None:
            timer.cancel()
        delay = self._settle if kind == "closed" else self._quiet
        self._timers[entry] = asyncio.get_running_loop().call_later(delay, self._fire, entry)

    def _fire(self, entry: Path) -> None:
        self._timers.pop(entry, None)
        task = asyncio.get_running_loop().create_task(
            self._apply(entry), name=f"reload:{entry.name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, entry: Path) -> None:
        lock = self._queues.setdefault(entry, asyncio.Lock())
        async with lock:
            try:
                await self._on_change(entry)
            except Exception:
                log.exception("applying the change to %s failed", entry)
