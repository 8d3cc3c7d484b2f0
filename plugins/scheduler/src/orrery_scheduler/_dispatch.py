"""Choosing which ready tasks this node claims, within the limits; and preemption."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ._model import CLAIMING, QUEUED, RUNNING, Task
from ._state import Op

if TYPE_CHECKING:
    from ._core import Core
    from ._execution import Run

__all__ = ["Dispatcher"]


class Dispatcher:
    """Claims ready tasks within the concurrency limits and runs the claimed ones."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.runs: dict[str, Run] = {}  # running here, by task id
        self.claiming = 0
        self.busy: Counter[str] = Counter()
        self.preempting: set[str] = set()
        self.preemptible = 0
        self._limits = {
            name: q.concurrency for name, q in core.config.queues.items() if q.concurrency
        }

    # -- choosing --------------------------------------------------------------------

    async def dispatch(self, now: float) -> int:
        """Claim as many ready tasks as the limits allow; the number of claims made."""
        core = self.core
        free = core.config.concurrency - len(self.runs) - self.claiming
        if core.stopping:
            return 0
        if free <= 0:
            if self.preemptible:
                self._maybe_preempt(now)
            return 0
        table = core.table
        limits = self._limits
        queues = [
            q
            for q in table.queues.values()
            if len(q)
            and not q.paused
            and (q.name not in limits or self.busy[q.name] < limits[q.name])
        ]
        claims: list[Op] = []
        owner = core.owner
        handlers = core.handlers.by_name
        view = table.view
        while free > 0 and queues:
            if len(queues) == 1:
                ready = queues[0]
            else:
                best: tuple[Any, Any] | None = None
                for candidate in queues:
                    head = candidate.peek(now)
                    if head is not None and (best is None or head[0] < best[0]):
                        best = (head[0], candidate)
                if best is None:
                    break
                ready = best[1]
            task = ready.pop(now)
            if task is None:
                queues.remove(ready)
                continue
            if task.name not in handlers:
                table.park(task, f"handler:{task.name}")
                continue
            if task.extra is not None:
                blocked = view.blocked(task)
                if blocked is not None:
                    table.park(task, blocked)
                    continue
            if task.extra is not None:
                view.reserve(task)
            task.where = CLAIMING
            self.claiming += 1
            self.busy[task.queue] += 1
            free -= 1
            claims.append(["claim", task.id, task.attempt + 1, owner, now])
            limit = limits.get(ready.name)
            if limit is not None and self.busy[ready.name] >= limit:
                queues.remove(ready)
        if claims:
            await core.submit(claims, wait=False)
        return len(claims)

    def unreserve(self, task: Task | None, claim: Op) -> None:
        """A claim this node made did not take effect."""
        self.claiming -= 1
        if task is not None and task.extra is not None:
            self.core.table.view.reserve(task, -1)
        queue = task.queue if task is not None else None
        if queue is not None:
            self.busy[queue] -= 1
        if task is not None and task.state == QUEUED and task.where == CLAIMING:
            self.core.table.make_ready(task)
            self.core.wake()

    def claimed(self, task: Task | None, claim: Op) -> None:
        """This node's claim was applied (``task``) or ignored (None)."""
        if task is None:
            self.unreserve(self.core.table.tasks.get(claim[1]), claim)
            return
        self.claiming -= 1
        if task.extra is not None:
            self.core.table.view.reserve(task, -1)
        self.core.execution.start(task)

    # -- preemption ------------------------------------------------------------------

    def _maybe_preempt(self, now: float) -> None:
        if self.preempting:
            return  # one at a time: wait for the slot the last one frees
        best: Task | None = None
        for ready in self.core.table.queues.values():
            if ready.paused or not len(ready):
                continue
            head = ready.peek(now)
            if head is not None and (best is None or head[1].priority < best.priority):
                best = head[1]
        if best is None:
            return
        victims = [
            r
            for r in self.runs.values()
            if r.task.extra is not None
            and r.task.extra.preemptible
            and r.task.priority > best.priority
            and r.job.stop_reason is None
            and r.task.state == RUNNING
        ]
        if not victims:
            return
        victim = max(victims, key=lambda r: (r.task.priority, r.task.started or 0.0))
        self.preempting.add(victim.task.id)
        self.core.log.info(
            "preempting task %s (priority %d) for %s (priority %d)",
            victim.task.id,
            victim.task.priority,
            best.id,
            best.priority,
        )
        self.core.execution.stop(victim, "preempted")
