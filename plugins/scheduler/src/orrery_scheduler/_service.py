"""`Scheduler`: the service other plugins get with ``ctx.services.get(SCHEDULER)``."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import msgspec

from ._core import Core
from ._cron import Schedule, next_fire_after
from ._model import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PAUSED,
    QUEUED,
    RUNNING,
    STATES,
    TERMINAL_STATES,
    Task,
    display_state,
    task_view,
)
from ._options import build_task, parse_time
from ._runner import Registration, TaskFunction
from .errors import (
    InvalidTaskOptions,
    InvalidTransition,
    SchedulerStopped,
    UnknownHandler,
    UnknownSchedule,
    UnknownTask,
)

__all__ = ["Scheduler"]

F = TypeVar("F", bound=TaskFunction)
#: What `Scheduler.add_many` takes per task.
TaskItem = tuple[str, Any] | tuple[str, Any, Mapping[str, Any]] | Mapping[str, Any]


class Scheduler:
    """Background tasks: register functions, add tasks, inspect and steer them.

    Task options (keyword arguments of `add`, keys of the bus/HTTP payload): ``queue``,
    ``priority`` (0..9 or critical/high/normal/low/background), ``at`` / ``delay``,
    ``deadline`` / ``deadline_in``, ``retries``, ``backoff``, ``backoff_max``,
    ``jitter``, ``timeout``, ``idempotency_key``, ``group`` and ``resources``,
    ``tags``, ``agent``, ``nodes``, ``avoid_nodes``, ``affinity``, ``anti_affinity``,
    ``exclusive``, ``preemptible``, ``paused``, ``id``.
    """

    def __init__(self, core: Core) -> None:
        self._core = core
        self.running = True

    @property
    def node(self) -> str:
        """This node's id."""
        return self._core.node

    @property
    def durable(self) -> bool:
        """Whether tasks are kept in the journal (survive restarts, shared by nodes)."""
        return self._core.oplog.durable

    def _check(self, operation: str) -> Core:
        if not self.running:
            raise SchedulerStopped(operation)
        if self._core.failed is not None:
            raise SchedulerStopped(operation, self._core.failed)
        return self._core

    # -- task functions --------------------------------------------------------------

    def register(
        self,
        name: str,
        fn: TaskFunction,
        *,
        replace: bool = False,
        mode: str = "auto",
        **defaults: Any,
    ) -> Registration:
        """Make ``fn`` runnable as task ``name``.

        ``fn(data)`` (or ``fn()``, and ``job=`` if it declares that parameter) may be a
        coroutine function (runs on the loop), or a plain function (runs in a thread;
        ``mode="inline"`` runs it on the loop). ``defaults`` are task options used
        unless `add` overrides them, e.g. ``retries=5, queue="mail"``.
        """
        return self._core.handlers.register(name, fn, replace=replace, mode=mode, defaults=defaults)

    def task(self, name: str | None = None, **defaults: Any) -> Callable[[F], F]:
        """Decorator form of `register`: ``@scheduler.task("mail.send", retries=5)``."""

        def decorate(fn: F) -> F:
            self.register(name or f"{fn.__module__}.{fn.__qualname__}", fn, **defaults)
            return fn

        return decorate

    def unregister(self, name: str) -> bool:
        """Forget task function ``name`` (queued tasks for it wait for a new one)."""
        return self._core.handlers.unregister(name)

    def functions(self) -> list[str]:
        """Names of the task functions registered on this node."""
        return self._core.handlers.names()

    # -- adding ----------------------------------------------------------------------

    def _build(self, name: str, data: Any, options: Mapping[str, Any]) -> Task:
        core = self._core
        registration = core.handlers.get(name)
        require = options.get("require_handler", core.config.require_handler)
        if registration is None and require:
            raise UnknownHandler(name, core.handlers.names())
        if registration is not None and registration.defaults:
            merged = dict(registration.defaults)
            merged.update(options)
        else:
            merged = dict(options)
        merged.pop("require_handler", None)
        task_id = merged.pop("id", None) or core.new_id()
        if not isinstance(task_id, str):
            raise InvalidTaskOptions("id", task_id, "use a string")
        return build_task(
            task_id,
            name,
            data,
            merged,
            now=core.clock.now(),
            default_queue=core.config.default_queue,
            default_retries=core.config.default_retries,
        )

    async def add(self, name: str, data: Any = None, **options: Any) -> str:
        """Queue task ``name`` with ``data``; returns its id once it is stored.

        With an ``idempotency_key`` already known, returns the existing task's id.
        """
        core = self._check("add a task")
        task = self._build(name, data, options)
        key = task.extra.key if task.extra is not None else None
        if key is not None:
            return (await self.add_many([(name, data, {**options, "id": task.id})]))[0]
        await core.submit([["add", task]])
        return task.id

    async def add_many(self, items: Iterable[TaskItem]) -> list[str]:
        """Queue many tasks in one journal write; their ids, in order."""
        core = self._check("add tasks")
        tasks: list[Task] = []
        for item in items:
            if isinstance(item, Mapping):
                fields = dict(item)
                name = fields.pop("name", None)
                if not isinstance(name, str):
                    raise InvalidTaskOptions("name", name, "each task needs a function name")
                data = fields.pop("data", None)
                options: Mapping[str, Any] = fields.pop("options", None) or fields
            else:
                name, data = item[0], item[1]
                options = item[2] if len(item) > 2 else {}
            tasks.append(self._build(name, data, options))
        ids: list[str] = []
        ops: list[list[Any]] = []
        for task in tasks:
            key = task.extra.key if task.extra is not None else None
            known = core.table.by_key(key) if key is not None else None
            if known is not None:
                ids.append(known.id)
                continue
            ids.append(task.id)
            ops.append(["add", task])
        if ops:
            results = await core.submit(ops)
            for op, result in zip(ops, results, strict=True):
                if result is None:  # lost a race on the idempotency key
                    lost: Task = op[1]
                    key = lost.extra.key if lost.extra is not None else None
                    known = core.table.by_key(key) if key is not None else None
                    if known is not None:
                        ids[ids.index(lost.id)] = known.id
        return ids

    # -- schedules -------------------------------------------------------------------

    async def schedule(
        self,
        name: str,
        data: Any = None,
        *,
        cron: str | None = None,
        every: float | None = None,
        tz: str = "UTC",
        misfire: str = "once",
        grace: float = 60.0,
        max_catchup: int = 100,
        start: Any = None,
        id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Run task ``name`` by ``cron`` (in time zone ``tz``) or ``every`` seconds.

        ``misfire`` decides what happens to fire times missed while no scheduler ran:
        ``skip`` them, run ``once`` for all of them, or run ``all`` (up to
        ``max_catchup``). Re-defining an ``id`` keeps its fire history, so a restarted
        program that re-declares its schedules never fires a time twice.
        """
        core = self._check("add a schedule")
        now = core.clock.now()
        self._build(name, data, options)  # validates the name and options now
        schedule = Schedule(
            id=id or f"s-{secrets.token_hex(4)}",
            name=name,
            data=data,
            options=dict(options),
            cron=cron,
            tz=tz,
            every=every,
            start=now if start is None else parse_time("start", start),
            misfire=misfire,
            grace=grace,
            max_catchup=max_catchup,
            created=now,
        ).validate()
        existing = core.table.schedules.get(schedule.id)
        if existing is not None:
            schedule.created = existing.created
            if every is not None and start is None and existing.every == every:
                schedule.start = existing.start
        [applied] = await core.submit([["sched", msgspec.to_builtins(schedule)]])
        return self._schedule_view(applied)

    async def unschedule(self, schedule_id: str) -> bool:
        """Remove a recurring schedule (tasks it already created are kept)."""
        core = self._check("remove a schedule")
        if schedule_id not in core.table.schedules:
            raise UnknownSchedule(schedule_id)
        [removed] = await core.submit([["unsched", schedule_id]])
        return removed is not None

    async def pause_schedule(self, schedule_id: str, paused: bool = True) -> dict[str, Any]:
        """Stop (or with ``paused=False`` restart) a schedule's firing."""
        core = self._check("pause a schedule")
        if schedule_id not in core.table.schedules:
            raise UnknownSchedule(schedule_id)
        [schedule] = await core.submit([["spause", schedule_id, paused]])
        return self._schedule_view(schedule)

    def schedules(self) -> list[dict[str, Any]]:
        """Every recurring schedule with its next fire time."""
        return [self._schedule_view(s) for s in self._core.table.schedules.values()]

    def _schedule_view(self, schedule: Schedule) -> dict[str, Any]:
        view: dict[str, Any] = msgspec.to_builtins(schedule)
        after = schedule.created if schedule.last_fire is None else schedule.last_fire
        view["next_fire"] = None if schedule.paused else next_fire_after(schedule, after)
        return view

    # -- inspecting ------------------------------------------------------------------

    async def sync(self) -> bool:
        """Read what other nodes appended to the shared journal now, instead of at the
        next poll; whether there was anything."""
        return await self._check("sync").sync()

    def _task(self, task_id: str) -> Task:
        task = self._core.table.tasks.get(task_id)
        if task is None:
            raise UnknownTask(task_id)
        return task

    def get(self, task_id: str) -> dict[str, Any]:
        """A task's details, with progress while it runs here."""
        core = self._core
        task = self._task(task_id)
        view = task_view(task, core.clock.now())
        run = core.dispatcher.runs.get(task_id)
        if run is not None and run.progress is not None:
            view["progress"] = {"pct": run.progress[0], "message": run.progress[1]}
        return view

    def tasks(
        self,
        *,
        state: str | None = None,
        queue: str | None = None,
        name: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Tasks (newest first), filtered by displayed state, queue and function name.

        An unknown ``state`` raises `InvalidTaskOptions` (a typo must not look like
        "no tasks").
        """
        if state is not None and state not in STATES:
            raise InvalidTaskOptions("state", state, f"use one of {', '.join(STATES)}")
        core = self._core
        now = core.clock.now()
        found: list[dict[str, Any]] = []
        for task in reversed(list(core.table.tasks.values())):
            if queue is not None and task.queue != queue:
                continue
            if name is not None and task.name != name:
                continue
            if state is not None and display_state(task, now) != state:
                continue
            found.append(self.get(task.id))
            if len(found) >= limit:
                break
        return found

    async def wait(self, task_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the task is completed, failed or cancelled; its details."""
        future = self._core.effects.waiter(self._task(task_id))
        return await asyncio.wait_for(future, timeout)

    def stats(self) -> dict[str, Any]:
        """Counts by state, wait/run time percentiles, totals, usage, queues."""
        core = self._core
        report = core.stats.report(core.counts())
        report["node"] = core.node
        report["running_here"] = len(core.dispatcher.runs)
        report["queues"] = {
            name: {"ready": len(q), "paused": q.paused, "running_here": core.dispatcher.busy[name]}
            for name, q in core.table.queues.items()
        }
        report["resources"] = core.table.view.usage()
        report["schedules"] = len(core.table.schedules)
        report["durable"] = core.oplog.durable
        return report

    # -- steering --------------------------------------------------------------------

    async def _steer(
        self, op: list[Any], operation: str, allowed: frozenset[str]
    ) -> dict[str, Any]:
        core = self._check(f"{operation} a task")
        task = self._task(op[1])
        if task.state not in allowed:
            raise InvalidTransition(
                task.id, display_state(task, core.clock.now()), operation, _HINTS[operation]
            )
        await core.submit([op])
        return self.get(task.id)

    async def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancel a waiting task, or stop a running one (cooperatively)."""
        now = self._core.clock.now()
        return await self._steer(["cancel", task_id, now], "cancel", _ACTIVE)

    async def pause(self, task_id: str) -> dict[str, Any]:
        """Hold a waiting task; a running one is stopped and held."""
        now = self._core.clock.now()
        return await self._steer(["pause", task_id, now], "pause", _PAUSABLE)

    async def resume(self, task_id: str) -> dict[str, Any]:
        """Release a paused task."""
        now = self._core.clock.now()
        return await self._steer(["resume", task_id, now], "resume", _RESUMABLE)

    async def retry(self, task_id: str) -> dict[str, Any]:
        """Run a failed or cancelled task again, with a fresh retry budget."""
        now = self._core.clock.now()
        return await self._steer(["retry", task_id, now], "retry", _RETRYABLE)

    async def pause_queue(self, queue: str, paused: bool = True) -> None:
        """Stop (or restart) dispatching from ``queue`` on every node."""
        await self._check("pause a queue").submit([["qpause", queue, paused]])

    async def resume_queue(self, queue: str) -> None:
        await self.pause_queue(queue, False)

    async def clear(self, states: Iterable[str] = (COMPLETED,), before: float | None = None) -> int:
        """Forget finished tasks (by default the completed ones); how many."""
        core = self._check("clear tasks")
        wanted = sorted(set(states))
        bad = [s for s in wanted if s not in TERMINAL_STATES]
        if bad:
            raise InvalidTaskOptions("states", bad, "only completed, failed and cancelled")
        cutoff = core.clock.now() if before is None else before
        [gone] = await core.submit([["clear", wanted, cutoff]])
        return len(gone)


_ACTIVE = frozenset({QUEUED, RUNNING, PAUSED})
_PAUSABLE = frozenset({QUEUED, RUNNING})
_RESUMABLE = frozenset({PAUSED, RUNNING})
_RETRYABLE = frozenset({FAILED, CANCELLED})
_HINTS = {
    "cancel": "only queued, scheduled, running or paused tasks can be cancelled",
    "pause": "only queued, scheduled or running tasks can be paused",
    "resume": "only paused tasks can be resumed",
    "retry": "only failed or cancelled tasks can be retried",
}
