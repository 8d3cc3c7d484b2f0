"""The replicated task table: applying journal operations, deterministically.

Every node applies the same operations in the same (journal) order, so all nodes agree
on each task's state. Operations are compact lists, ``[kind, ...]``; an operation that
no longer applies (the task finished meanwhile, a replayed duplicate) is ignored and
`apply` returns None. Besides the replicated fields, the table keeps this node's
derived indexes: ready queues, alarms and the cluster view used for placement.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import msgspec

from ._cron import Schedule
from ._model import (
    CANCELLED,
    CLAIMING,
    COMPLETED,
    FAILED,
    FLAG_DEADLINE_MISSED,
    FLAG_PAUSE_REQUESTED,
    NOWHERE,
    PARKED,
    PAUSED,
    QUEUED,
    RUNNING,
    TERMINAL_STATES,
    WAITING,
    Task,
    task_from_record,
)
from ._placement import ClusterView, node_of
from ._queue import ReadyQueue
from ._timers import Alarms

__all__ = ["Op", "TaskTable"]

Op = list[Any]


class TaskTable:
    """Tasks, schedules and node sessions, plus this node's dispatch indexes."""

    def __init__(
        self,
        view: ClusterView,
        aging: float | None,
        keep_finished: int,
        clock: Callable[[], float],
    ) -> None:
        self.tasks: dict[str, Task] = {}
        self.keys: dict[str, str] = {}
        self.schedules: dict[str, Schedule] = {}
        self.sessions: dict[str, float] = {}
        self.paused_queues: set[str] = set()
        self.counts: Counter[str] = Counter()
        #: Running tasks per owner session (to find claims of sessions that are gone).
        self.running_owners: Counter[str | None] = Counter()
        self.queues: dict[str, ReadyQueue] = {}
        self.alarms = Alarms()
        self.view = view
        self.parked: dict[str, list[Task]] = {}
        self._clock = clock
        self._aging = aging
        self._keep_finished = keep_finished
        self._finished: deque[str] = deque()
        self._seq = itertools.count(1)
        self._handlers: dict[str, Callable[..., Any]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("_op_")
        }

    # -- local indexes ---------------------------------------------------------------

    def queue(self, name: str) -> ReadyQueue:
        ready = self.queues.get(name)
        if ready is None:
            ready = self.queues[name] = ReadyQueue(name, self._aging)
            ready.paused = name in self.paused_queues
        return ready

    def make_ready(self, task: Task) -> None:
        """Put a QUEUED task where this node will find it: its ready queue, or an
        alarm at ``ready_at``."""
        task.seq = next(self._seq)
        if task.ready_at > self._clock():
            task.where = WAITING
            self.alarms.arm(task.ready_at, "ready", task, task.seq)
        else:
            self.queue(task.queue).push(task)

    def unready(self, task: Task) -> None:
        """Take a task out of this node's indexes (lazily)."""
        if task.where == WAITING or task.where == PARKED or task.where == CLAIMING:
            task.where = NOWHERE
        else:
            ready = self.queues.get(task.queue)
            if ready is not None:
                ready.discard(task)

    def park(self, task: Task, key: str) -> None:
        task.where = PARKED
        self.parked.setdefault(key, []).append(task)

    def wake(self, key: str) -> int:
        """Move tasks parked under ``key`` back to their ready queues."""
        waiting = self.parked.pop(key, None)
        if not waiting:
            return 0
        woken = 0
        for task in waiting:
            if task.where == PARKED and task.state == QUEUED:
                self.make_ready(task)
                woken += 1
        return woken

    def _set_state(self, task: Task, state: str) -> None:
        counts = self.counts
        counts[task.state] -= 1
        counts[state] += 1
        if task.state == RUNNING:
            self.running_owners[task.owner] -= 1
            if task.extra is not None:
                self.view.stopped(task)
                for key in self.view.wake_keys(task):
                    self.wake(key)
        task.state = state
        if state == RUNNING:
            self.running_owners[task.owner] += 1
            if task.extra is not None:
                self.view.started(task)
            if self.parked.get("started"):
                self.wake("started")
        elif state in TERMINAL_STATES:
            self._finished.append(task.id)
            self._evict()

    def _evict(self) -> None:
        while len(self._finished) > self._keep_finished:
            task = self.tasks.get(self._finished.popleft())
            if task is not None and task.state in TERMINAL_STATES:
                self._forget(task)

    def _forget(self, task: Task) -> None:
        del self.tasks[task.id]
        self.counts[task.state] -= 1
        if task.extra is not None and task.extra.key is not None:
            if self.keys.get(task.extra.key) == task.id:
                del self.keys[task.extra.key]

    def by_key(self, key: str) -> Task | None:
        task_id = self.keys.get(key)
        return None if task_id is None else self.tasks.get(task_id)

    def running_of(self, owner: str) -> list[Task]:
        if not self.running_owners.get(owner):
            return []
        return [t for t in self.tasks.values() if t.state == RUNNING and t.owner == owner]

    # -- applying operations ---------------------------------------------------------

    def apply(self, op: Op) -> Any:
        """Apply one operation; the affected task (or schedule, or list of tasks), or
        None when it did not apply."""
        handler = self._handlers.get(op[0])
        if handler is None:
            return None  # written by a newer version: skip rather than stop replaying
        return handler(*op[1:])

    def add(self, task: Task) -> Task | None:
        if task.id in self.tasks:
            return None
        key = None if task.extra is None else task.extra.key
        if key is not None:
            if key in self.keys and self.keys[key] in self.tasks:
                return None
            self.keys[key] = task.id
        self.tasks[task.id] = task
        self.counts[task.state] += 1
        if task.state == QUEUED:
            self.make_ready(task)
        elif task.state == RUNNING:  # restored from a snapshot
            self.running_owners[task.owner] += 1
            self.view.started(task)
        elif task.state in TERMINAL_STATES:
            self._finished.append(task.id)
        if task.deadline is not None and task.state not in TERMINAL_STATES:
            self.alarms.arm(task.deadline, "deadline", task)
        return task

    def _op_add(self, record: list[Any] | Task) -> Task | None:
        # This node's own adds carry the Task itself; the journal holds its record.
        return self.add(record if isinstance(record, Task) else task_from_record(record))

    def _op_claim(self, task_id: str, attempt: int, owner: str, now: float) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None or task.state != QUEUED or attempt != task.attempt + 1:
            return None
        self.unready(task)
        # A new attempt: the previous attempt's error no longer describes the task.
        task.attempt, task.owner, task.started, task.error = attempt, owner, now, None
        self._set_state(task, RUNNING)
        return task

    def _current_run(self, task_id: str, attempt: int) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None or task.state in TERMINAL_STATES or task.attempt != attempt:
            return None
        return task

    def _op_done(self, task_id: str, attempt: int, now: float, result: Any) -> Task | None:
        task = self._current_run(task_id, attempt)
        if task is None:
            return None
        self.unready(task)
        task.finished, task.result, task.error = now, result, None
        self._set_state(task, COMPLETED)
        return task

    def _op_fail(
        self, task_id: str, attempt: int, now: float, error: str, retry_at: float | None
    ) -> Task | None:
        task = self._current_run(task_id, attempt)
        if task is None or task.state != RUNNING:
            return None
        task.failures += 1
        task.error = error
        if retry_at is None:
            task.finished = now
            self._set_state(task, FAILED)
        else:
            task.ready_at = retry_at
            self._set_state(task, QUEUED)
            self.make_ready(task)
        return task

    def _op_requeue(self, task_id: str, attempt: int, now: float, reason: str) -> Task | None:
        task = self._current_run(task_id, attempt)
        if task is None or task.state != RUNNING:
            return None
        return self._requeue(task, now, reason)

    def _requeue(self, task: Task, now: float, reason: str) -> Task:
        task.error = reason
        if task.flags & FLAG_PAUSE_REQUESTED:
            task.flags &= ~FLAG_PAUSE_REQUESTED
            self._set_state(task, PAUSED)
        else:
            task.ready_at = now
            self._set_state(task, QUEUED)
            self.make_ready(task)
        task.owner = None  # after _set_state, which releases the owner's resources
        return task

    def _op_cancel(self, task_id: str, now: float) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None or task.state in TERMINAL_STATES:
            return None
        self.unready(task)
        task.finished = now
        self._set_state(task, CANCELLED)
        return task

    def _op_pause(self, task_id: str, now: float) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None:
            return None
        if task.state == QUEUED:
            self.unready(task)
            self._set_state(task, PAUSED)
            return task
        if task.state == RUNNING:
            task.flags |= FLAG_PAUSE_REQUESTED  # the owner stops it and re-queues it paused
            return task
        return None

    def _op_resume(self, task_id: str, now: float) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None:
            return None
        if task.state == RUNNING and task.flags & FLAG_PAUSE_REQUESTED:
            task.flags &= ~FLAG_PAUSE_REQUESTED
            return task
        if task.state != PAUSED:
            return None
        task.error = None  # "paused"/"preempted" no longer applies once it is released
        task.ready_at = max(task.ready_at, now)
        self._set_state(task, QUEUED)
        self.make_ready(task)
        return task

    def _op_retry(self, task_id: str, now: float) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None or task.state not in (FAILED, CANCELLED):
            return None
        task.failures, task.error, task.finished, task.result = 0, None, None, None
        task.ready_at = now
        task.flags &= ~FLAG_DEADLINE_MISSED
        self._set_state(task, QUEUED)
        self.make_ready(task)
        return task

    def _op_missed(self, task_id: str) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None or task.state in TERMINAL_STATES or task.flags & FLAG_DEADLINE_MISSED:
            return None
        task.flags |= FLAG_DEADLINE_MISSED
        return task

    def _op_qpause(self, queue: str, paused: bool) -> str:
        if paused:
            self.paused_queues.add(queue)
        else:
            self.paused_queues.discard(queue)
        self.queue(queue).paused = paused
        return queue

    def _op_clear(self, states: list[str], before: float) -> list[Task]:
        gone = [
            t
            for t in self.tasks.values()
            if t.state in states and t.state in TERMINAL_STATES and (t.finished or 0) <= before
        ]
        for task in gone:
            self._forget(task)
        return gone

    def _op_sched(self, record: dict[str, Any]) -> Schedule:
        schedule = msgspec.convert(record, Schedule)
        old = self.schedules.get(schedule.id)
        if old is not None and schedule.last_fire is None:
            schedule.last_fire = old.last_fire  # redefining keeps the fire history
        self.schedules[schedule.id] = schedule
        return schedule

    def _op_unsched(self, schedule_id: str) -> Schedule | None:
        return self.schedules.pop(schedule_id, None)

    def _op_spause(self, schedule_id: str, paused: bool) -> Schedule | None:
        schedule = self.schedules.get(schedule_id)
        if schedule is not None:
            schedule.paused = paused
        return schedule

    def _op_fire(
        self, schedule_id: str, last_fire: float, records: list[list[Any]]
    ) -> list[Task] | None:
        schedule = self.schedules.get(schedule_id)
        if schedule is None or (schedule.last_fire is not None and last_fire <= schedule.last_fire):
            return None
        schedule.last_fire = last_fire
        added = [self.add(task_from_record(r)) for r in records]
        return [t for t in added if t is not None]

    def _op_node(self, owner: str, now: float, kind: str) -> list[Task]:
        """A session started, beat or stopped. A new session of a node ends its older
        sessions: their running tasks were lost with the process."""
        lost: list[Task] = []
        if kind == "stop":
            self.sessions.pop(owner, None)
            return lost
        if kind == "start":
            node = node_of(owner)
            for other in [s for s in self.sessions if s != owner and node_of(s) == node]:
                lost += self._op_expire(other, now)
        self.sessions[owner] = now
        return lost

    def _op_expire(self, owner: str, now: float) -> list[Task]:
        self.sessions.pop(owner, None)
        return [self._requeue(task, now, "lost") for task in self.running_of(owner)]
