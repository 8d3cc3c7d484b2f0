"""Orrery scheduler plugin: durable background tasks, cron, priorities with aging,
deadlines, quotas, affinity, preemption, retries, progress; shared between nodes.

Other plugins use the service::

    scheduler = ctx.services.get(SCHEDULER)
    scheduler.register("report.build", build_report, retries=5)
    task_id = await scheduler.add("report.build", {"month": "2030-01"}, priority="high")
"""

from ._config import QueueSettings, SchedulerConfig
from ._cron import MISFIRE_POLICIES, Schedule, due_fire_times, next_fire_after
from ._model import PRIORITIES, STATES, Extra, Task, backoff_delay
from ._plugin import SCHEDULER, SchedulerPlugin
from ._queue import LEVELS, ReadyQueue, order_key
from ._runner import Job, Registration, current_job
from ._service import Scheduler
from .errors import (
    DuplicateHandler,
    FellBehind,
    InvalidTaskOptions,
    InvalidTransition,
    Preempted,
    SchedulerError,
    SchedulerStopped,
    TaskCancelled,
    UnknownHandler,
    UnknownSchedule,
    UnknownTask,
)

__all__ = [
    "LEVELS",
    "MISFIRE_POLICIES",
    "PRIORITIES",
    "SCHEDULER",
    "STATES",
    "DuplicateHandler",
    "Extra",
    "FellBehind",
    "InvalidTaskOptions",
    "InvalidTransition",
    "Job",
    "Preempted",
    "QueueSettings",
    "ReadyQueue",
    "Registration",
    "Schedule",
    "Scheduler",
    "SchedulerConfig",
    "SchedulerError",
    "SchedulerPlugin",
    "SchedulerStopped",
    "Task",
    "TaskCancelled",
    "UnknownHandler",
    "UnknownSchedule",
    "UnknownTask",
    "backoff_delay",
    "current_job",
    "due_fire_times",
    "next_fire_after",
    "order_key",
]
