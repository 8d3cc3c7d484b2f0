"""Errors of the scheduler plugin; all derive from `SchedulerError`."""

from __future__ import annotations

from typing import Any

from orrery.sdk import OrreryError

__all__ = [
    "DuplicateHandler",
    "FellBehind",
    "InvalidTaskOptions",
    "InvalidTransition",
    "Preempted",
    "SchedulerError",
    "SchedulerStopped",
    "TaskCancelled",
    "UnknownHandler",
    "UnknownSchedule",
    "UnknownTask",
]


class SchedulerError(OrreryError):
    """Base class of every scheduler error."""


class InvalidTaskOptions(SchedulerError, ValueError):
    """A task, schedule or option value was rejected; ``field`` names it."""

    def __init__(self, field: str, value: Any, hint: str) -> None:
        super().__init__(f"invalid {field} {value!r}: {hint}")
        self.field = field
        self.value = value


class UnknownHandler(SchedulerError, LookupError):
    """No task function is registered under ``name`` on this node."""

    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"no task function registered as {name!r} (registered: {listing}); register it "
            f"with scheduler.register({name!r}, fn) before adding tasks, or pass "
            f"require_handler=False to queue it for another node"
        )
        self.name = name


class DuplicateHandler(SchedulerError):
    """A second function was registered under a name that is taken."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"a task function is already registered as {name!r}; unregister it first or "
            f"pass replace=True"
        )
        self.name = name


class UnknownTask(SchedulerError, LookupError):
    """No task with this id is known (it may have been cleared)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"no task {task_id!r}; it never existed or was cleared (finished tasks are "
            f"kept up to the keep_finished limit); 'orrery tasks ls' lists known tasks"
        )
        self.task_id = task_id


class UnknownSchedule(SchedulerError, LookupError):
    """No recurring schedule with this id exists."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"no schedule {schedule_id!r}; list them with scheduler.schedules()")
        self.schedule_id = schedule_id


class InvalidTransition(SchedulerError):
    """The operation does not apply to the task in its current state."""

    def __init__(self, task_id: str, state: str, operation: str, hint: str = "") -> None:
        message = f"cannot {operation} task {task_id!r}: it is {state}"
        super().__init__(f"{message}; {hint}" if hint else message)
        self.task_id = task_id
        self.state = state
        self.operation = operation


class SchedulerStopped(SchedulerError):
    """The scheduler is not running (the plugin stopped or has not started, or this
    node stopped scheduling because of ``reason``)."""

    def __init__(self, operation: str, reason: str | None = None) -> None:
        if reason is not None:
            super().__init__(f"cannot {operation}: {reason}")
        else:
            super().__init__(
                f"cannot {operation}: the scheduler is stopped; wait for the scheduler plugin "
                f"to be active (orrery plugins ls)"
            )


class FellBehind(SchedulerError):
    """This node had not applied operations the journal's retention already deleted:
    its view of the tasks would be incomplete, so it stops scheduling."""

    def __init__(self, stream: str, applied: int, first_kept: int) -> None:
        super().__init__(
            f"this node applied journal stream {stream!r} up to version {applied}, but the "
            f"journal now continues at version {first_kept}: the node fell further behind "
            f"than journal_retention and stopped scheduling; restart the scheduler on this "
            f"node (it loads the latest snapshot), or raise journal_retention"
        )
        self.stream = stream
        self.applied = applied
        self.first_kept = first_kept


class TaskCancelled(SchedulerError):
    """Raised inside a task by `Job.checkpoint` after the task was cancelled."""


class Preempted(SchedulerError):
    """Raised inside a task by `Job.checkpoint` when a more urgent task needs its slot;
    the task goes back to the queue and runs again later (same attempt budget)."""
