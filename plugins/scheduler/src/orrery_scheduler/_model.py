"""Task records: the compact in-memory form and the journal form.

A queued task is one `Task` struct (no ``__dict__``, not tracked by the garbage
collector) plus, only when it uses them, one shared `Extra` with the rarer options.
That keeps a queued task well under a kilobyte.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import msgspec

__all__ = [
    "ACTIVE_STATES",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "PAUSED",
    "PRIORITIES",
    "QUEUED",
    "RUNNING",
    "SCHEDULED",
    "STATES",
    "TERMINAL_STATES",
    "Extra",
    "Task",
    "backoff_delay",
    "display_state",
    "task_from_record",
    "task_record",
    "task_view",
]

# Replicated states. "scheduled" is shown for a QUEUED task whose ready_at is ahead.
QUEUED: Final = "queued"
RUNNING: Final = "running"
PAUSED: Final = "paused"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
SCHEDULED: Final = "scheduled"
STATES: Final = (SCHEDULED, QUEUED, RUNNING, PAUSED, COMPLETED, FAILED, CANCELLED)
TERMINAL_STATES: Final = frozenset({COMPLETED, FAILED, CANCELLED})
ACTIVE_STATES: Final = frozenset({QUEUED, RUNNING, PAUSED})

#: Priority names; lower numbers run first (like Dramatiq and Celery on Redis).
PRIORITIES: Final = {"critical": 0, "high": 1, "normal": 2, "low": 3, "background": 4}

#: `Task.where`: local bookkeeping of a QUEUED task (not replicated).
NOWHERE: Final = 0
IN_QUEUE: Final = 1
PARKED: Final = 2
CLAIMING: Final = 3
WAITING: Final = 4  # in the timer heap until ready_at

#: `Task.flags` bits.
FLAG_DEADLINE_MISSED: Final = 1
FLAG_CANCEL_REQUESTED: Final = 2
FLAG_PREEMPT_REQUESTED: Final = 4
FLAG_PAUSE_REQUESTED: Final = 8


class Extra(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """Options most tasks do not use, kept out of `Task` to keep it small."""

    #: Idempotency key: adding a task whose key is known returns the known task.
    key: str | None = None
    #: Quota group and the named resources (e.g. ``{"cpu": 2}``) the task holds.
    group: str | None = None
    resources: dict[str, float] | None = None
    #: Labels of this task, seen by other tasks' affinity rules; ``agent`` adds
    #: ``agent:<name>``.
    tags: tuple[str, ...] = ()
    agent: str | None = None
    #: Nodes (ids or node labels) the task may run on / must not run on.
    nodes: tuple[str, ...] = ()
    avoid_nodes: tuple[str, ...] = ()
    #: Labels that must be present on the node (its labels or running tasks' labels).
    affinity: tuple[str, ...] = ()
    #: Labels of running tasks that must not be on the same node.
    anti_affinity: tuple[str, ...] = ()
    #: Labels that must not be running anywhere in the cluster (mutual exclusion).
    exclusive: tuple[str, ...] = ()
    #: May be preempted by a more urgent task (cooperative cancel, re-queued).
    preemptible: bool = False
    #: Retry backoff: first delay, cap and jitter fraction (None: scheduler defaults).
    backoff: float | None = None
    backoff_max: float | None = None
    jitter: float | None = None
    #: The recurring schedule that created this task, and the fire time it stands for.
    schedule: str | None = None
    fire_time: float | None = None

    def labels(self) -> tuple[str, ...]:
        """The labels this task carries while it runs."""
        if self.agent is None:
            return self.tags
        return (*self.tags, f"agent:{self.agent}")


class Task(msgspec.Struct, gc=False):
    """One task. Fields up to ``flags`` are replicated through the journal; ``seq``
    and ``where`` are this node's bookkeeping."""

    id: str
    name: str
    data: Any
    queue: str
    priority: int
    state: str
    created: float
    #: When the task (last) became or becomes ready; ages it and orders FIFO.
    ready_at: float
    deadline: float | None
    #: Claims so far (the current or last attempt's number).
    attempt: int
    #: Failed attempts so far (retries spent).
    failures: int
    max_retries: int
    timeout: float | None
    extra: Extra | None
    #: ``node/session`` that holds the current claim.
    owner: str | None = None
    started: float | None = None
    finished: float | None = None
    result: Any = None
    error: str | None = None
    flags: int = 0
    seq: int = 0
    where: int = NOWHERE


def task_record(task: Task) -> list[Any]:
    """The journal form of a task as added (compact positional list)."""
    extra = None if task.extra is None else msgspec.to_builtins(task.extra)
    return [
        task.id,
        task.name,
        task.data,
        task.queue,
        task.priority,
        task.state,
        task.created,
        task.ready_at,
        task.deadline,
        task.attempt,
        task.failures,
        task.max_retries,
        task.timeout,
        extra,
    ]


def task_from_record(record: list[Any]) -> Task:
    """Rebuild a task from `task_record` output (or a snapshot's full form)."""
    extra = record[13]
    task = Task(
        record[0],
        record[1],
        record[2],
        record[3],
        record[4],
        record[5],
        record[6],
        record[7],
        record[8],
        record[9],
        record[10],
        record[11],
        record[12],
        None if extra is None else msgspec.convert(extra, Extra),
    )
    if len(record) > 14:  # snapshot form: the outcome fields follow
        task.owner, task.started, task.finished, task.result, task.error, task.flags = record[14:20]
    return task


def snapshot_record(task: Task) -> list[Any]:
    """A task's full replicated state, for journal snapshots."""
    return [
        *task_record(task),
        task.owner,
        task.started,
        task.finished,
        task.result,
        task.error,
        task.flags,
    ]


def display_state(task: Task, now: float) -> str:
    """The state shown to people: QUEUED splits into scheduled / queued."""
    if task.state == QUEUED and task.ready_at > now:
        return SCHEDULED
    return task.state


def task_view(task: Task, now: float) -> dict[str, Any]:
    """A JSON-able description of ``task`` for the API, the bus and the CLI."""
    view: dict[str, Any] = {
        "id": task.id,
        "name": task.name,
        "state": display_state(task, now),
        "queue": task.queue,
        "priority": task.priority,
        "data": task.data,
        "created": task.created,
        "ready_at": task.ready_at,
        "deadline": task.deadline,
        "attempt": task.attempt,
        "retries": task.failures,
        "max_retries": task.max_retries,
        "timeout": task.timeout,
        "owner": task.owner,
        "started": task.started,
        "finished": task.finished,
        "result": task.result,
        "error": task.error,
        "deadline_missed": bool(task.flags & FLAG_DEADLINE_MISSED),
    }
    if task.extra is not None:
        view["options"] = msgspec.to_builtins(task.extra)
    return view


def backoff_delay(task_id: str, failures: int, base: float, cap: float, jitter: float) -> float:
    """Seconds before retry number ``failures`` (1 = first retry).

    Exponential (``base * 2**(failures-1)``, at most ``cap``), then shortened by up to
    ``jitter`` of itself. The jitter is drawn from a hash of the task id and the retry
    number rather than a global random generator, so every node (and every test run)
    computes the same delay for the same retry.
    """
    delay = min(cap, base * (2.0 ** max(0, failures - 1)))
    if jitter <= 0:
        return delay
    digest = hashlib.blake2b(f"{task_id}:{failures}".encode(), digest_size=8).digest()
    unit = int.from_bytes(digest, "big") / 2.0**64
    return delay * (1.0 - jitter * unit)
