"""Kernel processes for the integration tests: start, read output, kill, stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEADLINE", "Node", "StartNode", "to_toml"]

#: Seconds any one wait in these tests may take before it fails.
DEADLINE = 60.0


@dataclass
class Node:
    """One kernel process: its output lines can be awaited."""

    node_id: str
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            if not raw.endswith(b"\n"):
                break  # cut off by a kill mid-write: not a line the process finished
            self.lines.append(raw.decode().rstrip("\n"))
            self._changed.set()
        self._changed.set()

    async def wait_for(self, check: Callable[[list[str]], bool], what: str) -> None:
        """Wait (with a deadline) until ``check(lines)`` holds."""
        try:
            async with asyncio.timeout(DEADLINE):
                while not check(self.lines):
                    if self.process.returncode is not None and self._reader_done():
                        break
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pass
        if not check(self.lines):
            tail = "\n".join(self.lines[-20:])
            raise AssertionError(f"node {self.node_id}: never saw {what}; last output:\n{tail}")

    def _reader_done(self) -> bool:
        return self._reader is not None and self._reader.done()

    async def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs in the kernel."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        if self._reader is not None:
            await self._reader

    async def exited(self) -> int:
        """Wait (with a deadline) for the process to end by itself."""
        async with asyncio.timeout(DEADLINE):
            code = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return code

    async def stop(self) -> int:
        """SIGTERM, and wait for a clean exit."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(DEADLINE):
            code = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return code


StartNode = Callable[..., Awaitable[Node]]


def to_toml(config: dict[str, Any]) -> str:
    """``config`` (tables of str, int, float and bool values) as TOML text."""
    lines: list[str] = []

    def table(path: str, values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        if path:
            lines.append(f"[{path}]")
        for key, value in scalars.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = repr(value)
            else:
                text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{key} = {text}")
        for key, value in values.items():
            if isinstance(value, dict):
                table(f"{path}.{key}" if path else key, value)

    table("", config)
    return "\n".join(lines) + "\n"
