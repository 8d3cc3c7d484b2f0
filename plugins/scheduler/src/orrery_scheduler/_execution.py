"""Running claimed tasks on this node, and turning their outcome into operations.

A task's first step runs at once, inside the dispatch, rather than in a new
`asyncio.Task`: a function that finishes without waiting for anything (the common,
short task) then costs no task object and no trip through the event loop. Only a
function that actually waits is handed to a task, which resumes it exactly where it
stopped (the step-by-step delegation `asyncio.Task` itself does), so cancellation,
timeouts and ``current_job`` behave the same either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

import msgspec

from ._model import CANCELLED, Task, backoff_delay
from ._runner import Job, Registration, current_job
from ._state import Op
from .errors import Preempted, TaskCancelled

if TYPE_CHECKING:
    from ._core import Core

__all__ = ["Execution", "Run"]

_json_encode = msgspec.json.encode
Outcome = tuple["Run", str, Any]


class Run:
    """A task running on this node (exists only while it runs)."""

    __slots__ = ("atask", "attempt", "job", "progress", "registration", "task", "waiting")

    def __init__(self, task: Task, registration: Registration, job: Job) -> None:
        self.task = task
        self.attempt = task.attempt
        self.registration = registration
        self.job = job
        self.atask: asyncio.Task[None] | None = None
        self.progress: tuple[float, str] | None = None
        #: What the function waits on now (the future it yielded).
        self.waiting: Any = None


class _Forward:
    """Hands one value a coroutine yielded to the enclosing `asyncio.Task`."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self.value)


def _classify(error: BaseException, job: Job) -> tuple[str, Any]:
    if isinstance(error, asyncio.CancelledError):
        if job.stop_reason is None:  # the plugin itself is being torn down
            job.stop_reason = "shutdown"
        return "stopped", None
    if isinstance(error, TaskCancelled):
        job.stop_reason = job.stop_reason or "cancelled"
        return "stopped", None
    if isinstance(error, Preempted):
        job.stop_reason = job.stop_reason or "preempted"
        return "stopped", None
    return "error", f"{type(error).__name__}: {error}"


class Execution:
    """Starts runs, collects their outcomes, and reports them as operations."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._outcomes: list[Outcome] = []

    def start(self, task: Task) -> None:
        """Run a task this node has just claimed."""
        core = self.core
        dispatcher = core.dispatcher
        loop = asyncio.get_running_loop()
        registration = core.handlers.get(task.name)
        job = Job(task, core.effects.progress, loop)
        run = Run(task, registration or _MISSING, job)
        dispatcher.runs[task.id] = run
        if registration is None:  # unregistered between the claim and now
            error = f"no task function {task.name!r} is registered on node {core.node}"
            self._outcomes.append((run, "error", error))
            return
        core.stats.waited(max(0.0, (task.started or 0.0) - task.ready_at))
        if task.extra is not None and task.extra.preemptible:
            dispatcher.preemptible += 1
        if task.timeout is not None:
            started = task.started or 0.0
            core.table.alarms.arm(started + task.timeout, "timeout", task, task.attempt)
        token = current_job.set(job)
        try:
            coro = registration.start(job)
            yielded = coro.send(None)
        except StopIteration as finished:
            self._outcomes.append((run, "ok", finished.value))
        except (Exception, asyncio.CancelledError) as e:
            self._outcomes.append((run, *_classify(e, job)))
        else:
            run.waiting = yielded
            run.atask = loop.create_task(self._resume(run, coro, yielded), name=f"task:{task.id}")
        finally:
            current_job.reset(token)
        core.wake()

    async def _resume(self, run: Run, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        token = current_job.set(run.job)
        try:
            while True:
                try:
                    sent = await _Forward(yielded)
                except BaseException as thrown:  # cancellation, delivered by the Task
                    step = coro.throw(thrown)
                else:
                    step = coro.send(sent)
                yielded = run.waiting = step
        except StopIteration as finished:
            outcome: tuple[str, Any] = ("ok", finished.value)
        except (Exception, asyncio.CancelledError) as e:
            outcome = _classify(e, run.job)
        finally:
            current_job.reset(token)
        self._outcomes.append((run, *outcome))
        await self.flush()

    async def flush(self) -> None:
        """Report every finished run (one submit for all of them)."""
        if not self._outcomes:
            return
        outcomes, self._outcomes = self._outcomes, []
        ops: list[Op] = []
        for run, outcome, value in outcomes:
            ops += self._finish(run, outcome, value)
        self.core.wake()
        if ops:
            await self.core.submit(ops, wait=False)

    def _finish(self, run: Run, outcome: str, value: Any) -> list[Op]:
        core = self.core
        dispatcher = core.dispatcher
        task = run.task
        dispatcher.runs.pop(task.id, None)
        dispatcher.busy[task.queue] -= 1
        dispatcher.preempting.discard(task.id)
        if task.extra is not None and task.extra.preemptible and run.registration is not _MISSING:
            dispatcher.preemptible -= 1
        now = core.clock.now()
        core.stats.ran(max(0.0, now - (task.started or now)))
        reason = run.job.stop_reason
        if outcome == "ok":
            return [["done", task.id, run.attempt, now, self._storable(task, value)]]
        if outcome == "error" or reason == "timeout":
            error = value if outcome == "error" else f"timed out after {task.timeout:g}s"
            return [self.failure(task, run.attempt, error, now)]
        if reason == "cancelled":
            return [] if task.state == CANCELLED else [["cancel", task.id, now]]
        return [["requeue", task.id, run.attempt, now, reason]]

    def failure(self, task: Task, attempt: int, error: str, now: float) -> Op:
        """A ``fail`` operation, with the retry time if the task has retries left."""
        config = self.core.config
        failures = task.failures + 1
        retry_at = None
        if failures <= task.max_retries:
            extra = task.extra
            base = config.backoff if extra is None or extra.backoff is None else extra.backoff
            cap = config.backoff_max
            if extra is not None and extra.backoff_max is not None:
                cap = extra.backoff_max
            jitter = config.jitter if extra is None or extra.jitter is None else extra.jitter
            retry_at = now + backoff_delay(task.id, failures, base, cap, jitter)
        return ["fail", task.id, attempt, now, error, retry_at]

    def _storable(self, task: Task, value: Any) -> Any:
        """A result that can go into the journal (JSON); others become their repr."""
        if value is None or not self.core.oplog.durable:
            return value
        try:
            _json_encode(value)
        except (TypeError, msgspec.EncodeError):
            self.core.log.warning(
                "task %s (%s) returned %s, which is not JSON-able; storing its repr",
                task.id,
                task.name,
                type(value).__name__,
            )
            return repr(value)
        return value

    def stop(self, run: Run, reason: str) -> None:
        """Ask a running task to stop: `Job.checkpoint` raises, and a waiting coroutine
        is cancelled at its current ``await``.

        A blocking function in a thread cannot be interrupted: it is abandoned (its
        thread runs on) and its result ignored.
        """
        if run.job.stop_reason is not None and reason != "cancelled":
            return
        run.job.stop_reason = reason
        # Cancel what the function waits on, as `asyncio.Task.cancel` does: that also
        # works before the resuming task has taken its first step.
        waiting = run.waiting
        if isinstance(waiting, asyncio.Future) and not waiting.done():
            waiting.cancel(reason)
        elif run.atask is not None and not run.atask.done():
            run.atask.cancel(reason)

    def pending(self) -> list[asyncio.Task[None]]:
        """Tasks of runs that are waiting on something."""
        return [
            r.atask
            for r in self.core.dispatcher.runs.values()
            if r.atask is not None and not r.atask.done()
        ]


def _missing_function() -> None:
    raise AssertionError("placeholder for an unregistered task function")


_MISSING = Registration("<missing>", _missing_function, "inline", {})
