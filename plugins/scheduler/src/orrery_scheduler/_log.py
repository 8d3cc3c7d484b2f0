"""Where operations go: nowhere (memory mode) or a journal stream (durable mode).

Durable mode appends each batch of operations as one journal event, with
``expected_version`` set to the last version this node applied. Success means the
batch directly follows everything this node has seen, so it can apply its own
operations without reading them back; `orrery.sdk.WrongExpectedVersion` means another
node appended first, and the caller reads those events (`catch_up`), re-checks its
batch and appends again. Every node applies the same operations in journal order,
which is what makes a claim exclusive.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from orrery.sdk import Journal, WrongExpectedVersion

from ._model import Task, task_record
from ._state import Op
from .errors import FellBehind

__all__ = ["Conflict", "JournalLog", "MemoryLog", "OpLog"]

_EVENT_TYPE = "scheduler.ops"


class Conflict(Exception):
    """Another node appended since this node's last read; catch up and retry."""


class OpLog:
    """The memory log: operations are applied but not kept."""

    durable = False
    version = 0

    async def append(self, ops: Sequence[Op]) -> None:
        """Persist ``ops`` as one batch (raises `Conflict`)."""

    async def head(self) -> int:
        return self.version

    async def catch_up(self) -> list[Op]:
        """Operations appended by others since this node's last read."""
        return []

    async def load(self) -> tuple[dict[str, Any] | None, list[Op]]:
        """The latest snapshot and the operations after it."""
        return None, []

    def snapshot_due(self) -> bool:
        return False

    async def save_snapshot(self, state: dict[str, Any]) -> None:
        """Store ``state`` as of `version`."""


class MemoryLog(OpLog):
    """Nothing survives the process: for tests, benchmarks and throwaway work."""


class JournalLog(OpLog):
    """Operations in one journal stream, with snapshots every ``snapshot_every`` ops.

    Retention: once a snapshot this node saved is ``retention`` seconds old, the
    operations it covers (and older snapshots) are deleted. Every node snapshots and
    truncates on its own; a peer that has not applied the deleted operations yet finds
    a gap when it catches up and raises `FellBehind` rather than carry on with a partial
    view.
    """

    durable = True

    def __init__(
        self,
        journal: Journal,
        stream: str,
        snapshot_every: int,
        *,
        retention: float | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._journal = journal
        self.stream = stream
        self.version = 0
        self._snapshot_every = snapshot_every
        self._since_snapshot = 0
        self._retention = retention
        self._now = now
        #: (time saved, version) of this node's snapshots not yet used to truncate.
        self._snapshots: deque[tuple[float, int]] = deque()

    async def append(self, ops: Sequence[Op]) -> None:
        data = [
            ["add", task_record(op[1])] if op[0] == "add" and isinstance(op[1], Task) else op
            for op in ops
        ]
        try:
            self.version = await self._journal.append(
                self.stream, [{"type": _EVENT_TYPE, "data": data}], self.version
            )
        except WrongExpectedVersion as e:
            raise Conflict(str(e)) from e
        self._since_snapshot += len(ops)

    async def head(self) -> int:
        return await self._journal.version(self.stream)

    async def catch_up(self) -> list[Op]:
        ops: list[Op] = []
        async for event in self._journal.read(self.stream, self.version + 1):
            if event.version != self.version + 1:
                raise FellBehind(self.stream, self.version, event.version)
            if event.type == _EVENT_TYPE:
                ops.extend(event.data)
            self.version = event.version
        self._since_snapshot += len(ops)
        return ops

    async def load(self) -> tuple[dict[str, Any] | None, list[Op]]:
        found = await self._journal.load_snapshot(self.stream)
        state: dict[str, Any] | None = None
        if found is not None:
            self.version, state = found
        ops = await self.catch_up()
        self._since_snapshot = len(ops)
        return state, ops

    def snapshot_due(self) -> bool:
        return self._since_snapshot >= self._snapshot_every

    async def save_snapshot(self, state: dict[str, Any]) -> None:
        await self._journal.save_snapshot(self.stream, self.version, state)
        self._since_snapshot = 0
        if self._retention is None:
            return
        now = self._now()
        self._snapshots.append((now, self.version))
        cut = None
        while self._snapshots and now - self._snapshots[0][0] >= self._retention:
            cut = self._snapshots.popleft()[1]
        if cut is not None:
            await self._journal.truncate(self.stream, cut + 1)
