"""The scheduler machinery: one pump loop that rings alarms, dispatches ready tasks,
commits operations (one journal append per batch) and applies them.

Every state change is an operation (see `_state`). In memory mode an operation is
applied the moment it is made. In durable mode operations wait in ``_pending`` until
the pump appends them all as one journal event; only then are they applied, their
events published and their callers answered. So a caller's ``await add(...)`` returns
once the task is stored, and a task starts only after its claim is stored.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections import Counter
from typing import Any

import msgspec
from orrery.sdk import Bus, Clock

from ._config import SchedulerConfig
from ._cron import Schedule, due_fire_times, next_fire_after
from ._dispatch import Dispatcher
from ._effects import Effects
from ._execution import Execution
from ._log import Conflict, OpLog
from ._model import (
    FLAG_DEADLINE_MISSED,
    QUEUED,
    RUNNING,
    TERMINAL_STATES,
    WAITING,
    Task,
    snapshot_record,
    task_from_record,
)
from ._placement import ClusterView
from ._runner import Handlers
from ._state import Op, TaskTable
from ._stats import Stats
from .errors import FellBehind, SchedulerStopped

__all__ = ["Core"]

_Entry = tuple[list[Op], "asyncio.Future[list[Any]] | None"]


class Core:
    """State, log, dispatcher and runs of one scheduler instance."""

    def __init__(
        self,
        config: SchedulerConfig,
        clock: Clock,
        oplog: OpLog,
        bus: Bus | None,
        node: str,
        logger: logging.Logger,
    ) -> None:
        self.config = config
        self.clock = clock
        self.oplog = oplog
        self.log = logger
        self.node = node
        self.owner = f"{node}/{secrets.token_hex(4)}"
        #: Every session this instance has had (it rejoins after an expiry).
        self.owners = {self.owner}
        view = ClusterView(node, config.node_labels, config.capacity, config.quotas)
        self.table = TaskTable(view, config.aging or None, config.keep_finished, clock.now)
        self.handlers = Handlers()
        self.stats = Stats()
        self.effects = Effects(self, bus)
        self.dispatcher = Dispatcher(self)
        self.execution = Execution(self)
        self.handlers.on_register = self._handler_registered
        self._pending: list[_Entry] = []
        self._wake = asyncio.Event()
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(3)
        self._pump_task: asyncio.Task[None] | None = None
        self._armed: dict[str, float] = {}
        self.stopping = False
        self._closing = False
        #: Why this node stopped scheduling for good (`FellBehind`), or None.
        self.failed: str | None = None
        # One journal conversation at a time: an append and a catch-up must not overlap.
        self._lock = asyncio.Lock()

    # -- ids, waking -----------------------------------------------------------------

    def new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):x}"

    def wake(self) -> None:
        self._wake.set()

    def _handler_registered(self, name: str) -> None:
        if self.table.wake(f"handler:{name}"):
            self.wake()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load state from the journal, open this node's session, start the pump."""
        state, ops = await self.oplog.load()
        if state is not None:
            self._restore(state)
        for op in ops:
            await self.effects.apply(op, own=False)
        if self.oplog.durable:
            await self.submit([["node", self.owner, self.clock.now(), "start"]], wait=False)
            # The first beat right away also re-queues claims of sessions that are gone.
            self.table.alarms.arm(self.clock.now(), "beat", None)
        self._pump_task = asyncio.get_running_loop().create_task(
            self._pump(), name="scheduler-pump"
        )

    async def stop(self) -> None:
        """Stop dispatching, let running tasks finish within the grace period, re-queue
        the rest, write what is pending, and end the session."""
        self.stopping = True
        waiting = self.execution.pending()
        if waiting:
            await asyncio.wait(waiting, timeout=self.config.shutdown_grace)
            for run in list(self.dispatcher.runs.values()):
                self.execution.stop(run, "shutdown")
            late = self.execution.pending()
            if late:
                await asyncio.wait(late, timeout=1.0)
        self._closing = True
        self.wake()
        if self._pump_task is not None:
            done, _ = await asyncio.wait([self._pump_task], timeout=5.0)
            if not done:  # stuck in a journal write: give up on it
                self._pump_task.cancel()
            self._pump_task = None
        await self.execution.flush()
        for batch, _ in self._pending:  # claims not yet stored: leave those tasks queued
            batch[:] = [op for op in batch if op[0] != "claim" or self._drop_claim(op)]
        if self.oplog.durable:
            self._pending.append(([["node", self.owner, self.clock.now(), "stop"]], None))
            await self._commit()
            if self.oplog.snapshot_due():
                await self.oplog.save_snapshot(self.snapshot())
        self.effects.cancel_waiters()

    # -- submitting operations -------------------------------------------------------

    async def submit(self, ops: list[Op], *, wait: bool = True) -> list[Any]:
        """Apply ``ops`` now (memory) or queue them for the next append (durable).

        With ``wait`` the results of applying them are returned once they are stored.
        """
        if not self.oplog.durable:
            return [await self.effects.apply(op, own=True) for op in ops]
        if not wait:
            self._pending.append((ops, None))
            self.wake()
            return []
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((ops, future))
        if self._pump_task is None:  # not started yet, or shut down: write directly
            await self._commit()
        else:
            self.wake()
        return await future

    async def _commit(self) -> None:
        async with self._lock:
            await self._commit_locked()

    async def _commit_locked(self) -> None:
        entries, self._pending = self._pending, []
        if not entries:
            return
        try:
            await self._commit_entries(entries)
        except BaseException as e:
            for _, future in entries:
                if future is not None and not future.done():
                    future.set_exception(e)
            raise
        for ops, future in entries:
            results = [await self.effects.apply(op, own=True) for op in ops]
            if future is not None and not future.done():
                future.set_result(results)
        if self.oplog.snapshot_due():
            await self.oplog.save_snapshot(self.snapshot())

    async def _commit_entries(self, entries: list[_Entry]) -> None:
        delay = 0.01
        while True:
            ops = [op for batch, _ in entries for op in batch]
            if not ops:
                return
            try:
                await self.oplog.append(ops)
                return
            except Conflict:
                await self._apply_remote(await self._catch_up())
                for batch, _ in entries:
                    batch[:] = [op for op in batch if self._still_valid(op)]
            except FellBehind:
                raise  # retrying cannot help: the operations it missed are gone
            except Exception:
                if self.stopping and delay > 1:
                    raise
                self.log.exception("scheduler: writing to the journal failed; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _drop_claim(self, op: Op) -> bool:
        self.dispatcher.unreserve(self.table.tasks.get(op[1]), op)
        return False

    def _still_valid(self, op: Op) -> bool:
        """Re-check an operation after reading what other nodes appended first."""
        kind = op[0]
        table = self.table
        if kind == "claim":
            task = table.tasks.get(op[1])
            if task is not None and task.state == QUEUED and op[2] == task.attempt + 1:
                return True
            self.dispatcher.unreserve(task, op)
            return False
        if kind == "fire":
            schedule = table.schedules.get(op[1])
            return schedule is not None and (
                schedule.last_fire is None or op[2] > schedule.last_fire
            )
        if kind == "missed":
            task = table.tasks.get(op[1])
            return task is not None and not task.flags & FLAG_DEADLINE_MISSED
        if kind == "expire":
            seen = table.sessions.get(op[1])
            if seen is None:
                return bool(table.running_owners.get(op[1]))
            return bool(seen + self.config.lease < op[2])
        return True

    async def _apply_remote(self, ops: list[Op]) -> None:
        for op in ops:
            await self.effects.apply(op, own=False)

    async def sync(self) -> bool:
        """Apply what other nodes appended; whether there was anything."""
        if not self.oplog.durable:
            return False
        async with self._lock:
            if await self.oplog.head() <= self.oplog.version:
                return False
            await self._apply_remote(await self._catch_up())
            return True

    async def _catch_up(self) -> list[Op]:
        """What other nodes appended; a gap in it ends scheduling on this node."""
        try:
            return await self.oplog.catch_up()
        except FellBehind as e:
            self._fail(str(e))
            raise

    def _fail(self, reason: str) -> None:
        """Stop scheduling on this node for good: its view of the tasks is incomplete.

        Local runs are stopped; with no more heartbeats, other nodes re-queue them.
        """
        if self.failed is not None:
            return
        self.failed = reason
        self.log.error("scheduler stopped scheduling: %s", reason)
        self._closing = True
        self.wake()
        for run in list(self.dispatcher.runs.values()):
            self.execution.stop(run, "node fell behind the journal")
        pending, self._pending = self._pending, []
        for _, future in pending:
            if future is not None and not future.done():
                future.set_exception(SchedulerStopped("store the operation", reason))
        self.effects.cancel_waiters()

    # -- the pump --------------------------------------------------------------------

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        poll = self.config.poll_interval if self.oplog.durable else None
        last_sync = loop.time()
        while not self._closing:
            self._wake.clear()
            now = self.clock.now()
            try:
                made = await self._ring(now)
                made += await self.dispatcher.dispatch(now)
                await self.execution.flush()
                if self._pending:
                    await self._commit()
                    await asyncio.sleep(0)
                    continue
                if poll is not None and loop.time() - last_sync >= poll:
                    last_sync = loop.time()
                    if await self.sync():
                        continue
            except asyncio.CancelledError:
                raise
            except FellBehind:
                return  # _catch_up recorded why; this node schedules no more
            except Exception:
                self.log.exception("scheduler pump failed; retrying")
                await asyncio.sleep(0.1)
                continue
            if made:
                await asyncio.sleep(0)
                continue
            await self.clock.wait(self._wake, self.table.alarms.next_due(), poll)

    async def _ring(self, now: float) -> int:
        """Handle due alarms; the number of operations made."""
        ops: list[Op] = []
        table = self.table
        for _, _, kind, subject, token in table.alarms.pop_due(now):
            if kind == "ready":
                task: Task = subject
                if task.state == QUEUED and task.where == WAITING and task.seq == token:
                    table.queue(task.queue).push(task)
                    self.wake()
            elif kind == "deadline":
                task = subject
                if task.state not in TERMINAL_STATES and not task.flags & FLAG_DEADLINE_MISSED:
                    if task.deadline is not None and task.deadline <= now:
                        ops.append(["missed", task.id])
            elif kind == "timeout":
                run = self.dispatcher.runs.get(subject.id)
                if run is not None and run.attempt == token:
                    self.execution.stop(run, "timeout")
            elif kind == "schedule":
                ops += self._fire(subject, now)
            elif kind == "beat":
                ops += self._beat(now)
        if ops:
            await self.submit(ops, wait=False)
        return len(ops)

    def arm_schedule(self, schedule: Schedule) -> None:
        """Set the alarm for the schedule's next fire time (once per fire time)."""
        if schedule.paused:
            return
        after = schedule.created if schedule.last_fire is None else schedule.last_fire
        when = next_fire_after(schedule, after)
        if self._armed.get(schedule.id) == when:
            return
        self._armed[schedule.id] = when
        self.table.alarms.arm(when, "schedule", schedule.id)

    def _fire(self, schedule_id: str, now: float) -> list[Op]:
        schedule = self.table.schedules.get(schedule_id)
        self._armed.pop(schedule_id, None)
        if schedule is None or schedule.paused:
            return []
        fires, last = due_fire_times(schedule, now)
        if last is None:
            self.arm_schedule(schedule)
            return []
        records = [self.effects.fired_task(schedule, fire, now) for fire in fires]
        return [["fire", schedule.id, last, records]]

    def _beat(self, now: float) -> list[Op]:
        lease = self.config.lease
        self.table.alarms.arm(now + lease / 3, "beat", None)
        ops: list[Op] = [["node", self.owner, now, "beat"]]
        sessions = self.table.sessions
        for owner, seen in sessions.items():
            if owner != self.owner and seen + lease < now:
                ops.append(["expire", owner, now])
        # Claims of a session that is gone altogether (expired while its claims were
        # still being written) would otherwise stay running forever.
        for holder, running in self.table.running_owners.items():
            if running > 0 and holder is not None and holder not in sessions:
                if holder not in self.owners:
                    ops.append(["expire", holder, now])
        return ops

    # -- snapshots -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The replicated state, for a journal snapshot or a hot reload."""
        table = self.table
        return {
            "tasks": [snapshot_record(t) for t in table.tasks.values()],
            "schedules": [msgspec.to_builtins(s) for s in table.schedules.values()],
            "sessions": dict(table.sessions),
            "paused_queues": sorted(table.paused_queues),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        table = self.table
        for record in state.get("tasks", []):
            table.add(task_from_record(record))
        for record in state.get("schedules", []):
            schedule = msgspec.convert(record, Schedule)
            table.schedules[schedule.id] = schedule
            self.arm_schedule(schedule)
        table.sessions.update(state.get("sessions", {}))
        for queue in state.get("paused_queues", []):
            table.apply(["qpause", queue, True])

    def adopt(self, state: dict[str, Any]) -> None:
        """Take over a previous instance's memory state (hot reload). Its running
        tasks are re-queued: they may finish in the old instance too (at least once)."""
        self._restore(state)
        owners = {t.owner for t in self.table.tasks.values() if t.state == RUNNING}
        for owner in owners:
            if owner is not None:
                self.table.apply(["expire", owner, self.clock.now()])

    def counts(self) -> dict[str, int]:
        """Tasks by displayed state (queued tasks not yet due count as scheduled)."""
        counts = Counter({k: v for k, v in self.table.counts.items() if v > 0})
        now = self.clock.now()
        waiting = sum(
            1
            for t in self.table.tasks.values()
            if t.state == QUEUED and (t.where == WAITING or t.ready_at > now)
        )
        if waiting:
            counts[QUEUED] -= waiting
            counts["scheduled"] += waiting
        return {state: n for state, n in counts.items() if n > 0}
