"""What follows from an applied operation on this node: starting or stopping runs,
answering waiters, arming alarms, and publishing ``task.*`` events.

A node publishes events only for operations it made itself, so with a shared bus each
event goes out once however many nodes apply the operation.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from orrery.sdk import Bus

from ._cron import Schedule
from ._model import (
    PAUSED,
    QUEUED,
    RUNNING,
    TERMINAL_STATES,
    Task,
    task_record,
    task_view,
)
from ._options import build_task
from ._state import Op

if TYPE_CHECKING:
    from ._core import Core
    from ._runner import Job

__all__ = ["Effects"]


class Effects:
    """Applies operations to the table and carries out their consequences."""

    def __init__(self, core: Core, bus: Bus | None) -> None:
        self.core = core
        self.bus = bus if core.config.events else None
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._background: set[asyncio.Task[Any]] = set()

    async def apply(self, op: Op, *, own: bool) -> Any:
        """Apply ``op``; returns what `TaskTable.apply` returned."""
        core = self.core
        result = core.table.apply(op)
        kind = op[0]
        if kind == "claim":
            if op[3] in core.owners:
                core.dispatcher.claimed(result, op)
                if result is not None:
                    await self._publish("task.started", result, attempt=result.attempt)
            return result
        if result is None:
            return None
        if kind == "done":
            await self._terminal(result, own, "task.completed", result=result.result)
        elif kind == "fail":
            task: Task = result
            if task.state == QUEUED:
                if own:
                    await self._publish(
                        "task.retry",
                        task,
                        attempt=task.attempt,
                        error=task.error,
                        retry_at=task.ready_at,
                    )
            else:
                await self._terminal(task, own, "task.failed", error=task.error)
        elif kind == "cancel":
            self._stop_local(result, "cancelled")
            await self._terminal(result, own, "task.cancelled")
        elif kind == "add":
            if own:
                await self._publish("task.added", result, ready_at=result.ready_at)
        elif kind == "requeue":
            if own:
                topic = "task.paused" if result.state == PAUSED else "task.requeued"
                await self._publish(topic, result, reason=op[4])
        elif kind == "pause":
            if result.state == RUNNING:
                self._stop_local(result, "paused")
            elif own:
                await self._publish("task.paused", result)
        elif kind == "resume":
            if own:
                await self._publish("task.resumed", result)
        elif kind == "retry":
            if own:
                await self._publish("task.retry", result, attempt=result.attempt, manual=True)
        elif kind == "missed":
            if own:
                await self._publish("task.deadline_missed", result, deadline=result.deadline)
        elif kind in ("sched", "spause"):
            core.arm_schedule(result)
        elif kind == "fire":
            schedule = core.table.schedules.get(op[1])
            if schedule is not None:
                core.arm_schedule(schedule)
            if own:
                for added in result:
                    await self._publish("task.added", added, schedule=op[1])
        elif kind in ("node", "expire"):
            await self._lost(op, result, own)
        core.wake()  # anything applied may let the pump dispatch more
        return result

    async def _lost(self, op: Op, tasks: list[Task], own: bool) -> None:
        core = self.core
        if op[0] == "expire" and op[1] == core.owner:
            # Another node declared this session dead (it missed heartbeats): runs still
            # going here may be repeated elsewhere. Rejoin under a new session.
            core.log.warning("scheduler session %s expired by another node; rejoining", op[1])
            core.owner = f"{core.node}/{core.new_id()}x"
            core.owners.add(core.owner)
            await core.submit([["node", core.owner, core.clock.now(), "start"]], wait=False)
        if own:
            for task in tasks:
                await self._publish("task.requeued", task, reason="lost")

    def _stop_local(self, task: Task, reason: str) -> None:
        run = self.core.dispatcher.runs.get(task.id)
        if run is not None:
            self.core.execution.stop(run, reason)

    async def _terminal(self, task: Task, own: bool, topic: str, **data: Any) -> None:
        stats = self.core.stats
        if own:
            stats.count(task.state)
            await self._publish(topic, task, attempt=task.attempt, **data)
        waiters = self._waiters.pop(task.id, None)
        if waiters:
            view = task_view(task, self.core.clock.now())
            for future in waiters:
                if not future.done():
                    future.set_result(view)

    # -- waiting, progress, events ---------------------------------------------------

    def waiter(self, task: Task) -> asyncio.Future[dict[str, Any]]:
        """A future resolved with the task's view when it reaches a final state."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if task.state in TERMINAL_STATES:
            future.set_result(task_view(task, self.core.clock.now()))
        else:
            self._waiters.setdefault(task.id, []).append(future)
        return future

    def cancel_waiters(self) -> None:
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()
        self._waiters.clear()
        for background in self._background:
            background.cancel()

    def progress(self, job: Job, pct: float, message: str) -> None:
        """Record a running task's progress and publish ``task.progress``."""
        run = self.core.dispatcher.runs.get(job.id)
        if run is None or run.job is not job:
            return
        run.progress = (pct, message)
        if self.bus is not None:
            data = {"id": job.id, "name": job.name, "pct": pct, "message": message}
            publishing = asyncio.get_running_loop().create_task(
                self.bus.publish("task.progress", data, key=job.id)
            )
            self._background.add(publishing)
            publishing.add_done_callback(self._background.discard)

    async def _publish(self, topic: str, task: Task, **extra: Any) -> None:
        if self.bus is None:
            return
        data = {"id": task.id, "name": task.name, "queue": task.queue, **extra}
        try:
            await self.bus.publish(topic, data, key=task.id)
        except Exception:  # a closing bus must not stop the scheduler's bookkeeping
            self.core.log.debug("could not publish %s for task %s", topic, task.id, exc_info=True)

    def fired_task(self, schedule: Schedule, fire: float, now: float) -> list[Any]:
        """The journal record of the task a schedule runs for fire time ``fire``."""
        core = self.core
        options = dict(schedule.options)
        options["schedule"] = schedule.id
        options["fire_time"] = fire
        task = build_task(
            f"{schedule.id}@{fire:.3f}",
            schedule.name,
            schedule.data,
            options,
            now=now,
            default_queue=core.config.default_queue,
            default_retries=core.config.default_retries,
        )
        return task_record(task)
