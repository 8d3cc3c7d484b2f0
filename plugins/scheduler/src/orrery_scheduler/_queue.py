"""The ready queue of one named queue: effective priority, then earliest deadline,
then first come.

A task of priority ``p`` that became ready at ``r`` has, at time ``now``, the
effective level ``max(0, p - (epoch(now) - epoch(r)))`` with ``epoch(t) =
floor(t / aging)``: it gains one level for every aging boundary it waits through, so a
low priority task cannot starve. Tasks are ordered by (effective level, deadline,
ready time, arrival); a task without deadline sorts after every deadline (EDF).

Tasks of one (priority, epoch) share an effective level at any moment, so they sit in
one heap ordered by (deadline, ready time, arrival); a group that reaches level 0 is
merged into the level-0 heap once. Picking the next task then looks at one heap top
per priority level, whatever the queue length.
"""

from __future__ import annotations

import heapq
import math
from bisect import insort
from collections.abc import Iterator

from ._model import IN_QUEUE, NOWHERE, QUEUED, Task

__all__ = ["LEVELS", "ReadyQueue", "order_key"]

#: Priorities run from 0 (most urgent) to LEVELS - 1.
LEVELS = 10
_INF = math.inf

Entry = tuple[float, float, int, Task]
Key = tuple[int, float, float, int]


def order_key(task: Task, now: float, aging: float | None) -> Key:
    """The dispatch order of ``task`` at ``now`` (smaller first); the reference the
    heaps implement, used by tests."""
    level = task.priority
    if aging:
        level = max(0, level - (math.floor(now / aging) - math.floor(task.ready_at / aging)))
    deadline = _INF if task.deadline is None else task.deadline
    return (level, deadline, task.ready_at, task.seq)


class ReadyQueue:
    """Ready tasks of one queue. Removal is lazy: a task whose ``where``/``seq`` no
    longer match its heap entry is skipped when it reaches the top."""

    __slots__ = ("_active", "_aged", "_aging", "_epochs", "_groups", "_live", "name", "paused")

    def __init__(self, name: str, aging: float | None) -> None:
        self.name = name
        self.paused = False
        self._aging = aging if aging and aging > 0 else None
        self._aged: list[Entry] = []
        # (priority, epoch) -> heap; per priority, the sorted epochs that have a heap.
        self._groups: dict[tuple[int, int], list[Entry]] = {}
        self._epochs: list[list[int]] = [[] for _ in range(LEVELS)]
        # Priorities (>= 1) that have at least one group, ascending.
        self._active: list[int] = []
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def push(self, task: Task) -> None:
        """Add a QUEUED task (its ``seq`` must be fresh and unique)."""
        entry: Entry = (
            _INF if task.deadline is None else task.deadline,
            task.ready_at,
            task.seq,
            task,
        )
        task.where = IN_QUEUE
        self._live += 1
        priority = task.priority
        if priority == 0:
            heapq.heappush(self._aged, entry)
            return
        epoch = 0 if self._aging is None else math.floor(task.ready_at / self._aging)
        group = self._groups.get((priority, epoch))
        if group is not None:
            heapq.heappush(group, entry)
            return
        self._groups[(priority, epoch)] = [entry]
        epochs = self._epochs[priority]
        if not epochs:
            insort(self._active, priority)
        if not epochs or epochs[-1] < epoch:
            epochs.append(epoch)
        else:
            insort(epochs, epoch)

    def discard(self, task: Task) -> None:
        """Forget ``task`` (cancelled, paused, claimed elsewhere); O(1), lazy."""
        if task.where == IN_QUEUE:
            task.where = NOWHERE
            self._live -= 1

    @staticmethod
    def _clean(heap: list[Entry]) -> None:
        while heap:
            _, _, seq, task = heap[0]
            if task.where == IN_QUEUE and task.seq == seq and task.state == QUEUED:
                return
            heapq.heappop(heap)

    def _drop_epoch(self, priority: int) -> None:
        epochs = self._epochs[priority]
        del self._groups[(priority, epochs.pop(0))]
        if not epochs:
            self._active.remove(priority)

    def _age(self, current: int) -> None:
        """Merge groups that reached level 0 into the level-0 heap."""
        merged = False
        for priority in list(self._active):
            epochs = self._epochs[priority]
            while epochs and priority - (current - epochs[0]) <= 0:
                self._aged.extend(self._groups[(priority, epochs[0])])
                self._drop_epoch(priority)
                merged = True
        if merged:
            heapq.heapify(self._aged)

    def _best_heap(self, now: float) -> tuple[Key, list[Entry]] | None:
        current = 0 if self._aging is None else math.floor(now / self._aging)
        if self._aging is not None and self._active:
            self._age(current)
        aged = self._aged
        if aged:
            self._clean(aged)
            if aged:
                deadline, ready, seq, _ = aged[0]
                return (0, deadline, ready, seq), aged
        level = LEVELS
        groups = self._groups
        for priority in list(self._active):
            epochs = self._epochs[priority]
            while epochs:
                heap = groups[(priority, epochs[0])]
                self._clean(heap)
                if heap:
                    break
                self._drop_epoch(priority)
            if epochs:
                level = min(level, priority - (current - epochs[0]))
        if level == LEVELS:
            return None
        best: tuple[Key, list[Entry]] | None = None
        for priority in self._active:
            if priority < level:
                continue
            group = groups.get((priority, current - (priority - level)))
            if group is None:
                continue
            self._clean(group)
            if not group:
                continue
            deadline, ready, seq, _ = group[0]
            key = (level, deadline, ready, seq)
            if best is None or key < best[0]:
                best = (key, group)
        return best

    def peek(self, now: float) -> tuple[Key, Task] | None:
        """The next task and its order key, without removing it."""
        found = self._best_heap(now)
        if found is None:
            return None
        return found[0], found[1][0][3]

    def pop(self, now: float) -> Task | None:
        """Remove and return the next task (its ``where`` becomes NOWHERE)."""
        found = self._best_heap(now)
        if found is None:
            return None
        task = heapq.heappop(found[1])[3]
        task.where = NOWHERE
        self._live -= 1
        return task

    def tasks(self) -> Iterator[Task]:
        """The live tasks, in no particular order."""
        for entry in self._aged:
            if entry[3].where == IN_QUEUE and entry[3].seq == entry[2]:
                yield entry[3]
        for heap in self._groups.values():
            for entry in heap:
                if entry[3].where == IN_QUEUE and entry[3].seq == entry[2]:
                    yield entry[3]
