"""Task functions: the registry, the `Job` a running task sees, and how a function is
called (coroutine on the loop, plain function in a thread, or inline)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, cast

from ._model import Task
from .errors import DuplicateHandler, InvalidTaskOptions, Preempted, TaskCancelled

__all__ = ["Handlers", "Job", "Registration", "current_job"]

TaskFunction = Callable[..., Any]
ProgressSink = Callable[["Job", float, str], None]

#: The job of the task running in this context (set for coroutine and thread tasks).
current_job: contextvars.ContextVar[Job] = contextvars.ContextVar("orrery_scheduler_job")


class Job:
    """What a running task knows about itself; passed as ``job=`` to task functions that
    declare that parameter, and available anywhere as `current_job().get()`.

    ``progress(pct, message)`` publishes ``task.progress``; ``checkpoint()`` raises
    `Preempted` or `TaskCancelled` when the scheduler asked the task to stop, so long
    loops stop cooperatively (coroutines are also cancelled at their next ``await``).
    """

    __slots__ = ("_loop", "_sink", "attempt", "data", "id", "key", "name", "stop_reason", "task")

    def __init__(self, task: Task, sink: ProgressSink, loop: asyncio.AbstractEventLoop) -> None:
        self.task = task
        self.id = task.id
        self.name = task.name
        self.data = task.data
        self.attempt = task.attempt
        extra = task.extra
        #: Stable across attempts: use it to make side effects idempotent.
        self.key = extra.key if extra is not None and extra.key else task.id
        self.stop_reason: str | None = None
        self._sink = sink
        self._loop = loop

    @property
    def deadline(self) -> float | None:
        return self.task.deadline

    @property
    def scheduled_for(self) -> float | None:
        """The cron/interval fire time this run stands for (None for one-off tasks)."""
        extra = self.task.extra
        return None if extra is None else extra.fire_time

    @property
    def stopping(self) -> bool:
        """Whether the scheduler asked this task to stop (cancel, preempt, pause,
        timeout or shutdown)."""
        return self.stop_reason is not None

    def progress(self, pct: float, message: str = "") -> None:
        """Report progress (0..100); safe to call from a worker thread."""
        pct = max(0.0, min(100.0, float(pct)))
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._sink(self, pct, message)
        else:
            self._loop.call_soon_threadsafe(self._sink, self, pct, message)

    def checkpoint(self) -> None:
        """Raise if the scheduler asked this task to stop; call it in long loops."""
        reason = self.stop_reason
        if reason is None:
            return
        if reason == "cancelled":
            raise TaskCancelled(f"task {self.id} was cancelled")
        raise Preempted(f"task {self.id} was asked to stop ({reason}); it will run again")


class Registration:
    """A task function and its defaults (queue, priority, retries, timeout...)."""

    __slots__ = ("_takes_data", "defaults", "fn", "is_async", "mode", "name", "wants_job")

    def __init__(self, name: str, fn: TaskFunction, mode: str, defaults: dict[str, Any]) -> None:
        self.name = name
        self.fn = fn
        self.defaults = defaults
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        )
        if mode not in ("auto", "thread", "inline"):
            raise InvalidTaskOptions("mode", mode, "use 'auto', 'thread' or 'inline'")
        self.mode = mode
        parameters: Mapping[str, inspect.Parameter]
        try:
            parameters = inspect.signature(fn).parameters
            known = True
        except (TypeError, ValueError):  # builtins without a signature: call with data
            parameters, known = {}, False
        self.wants_job = "job" in parameters
        positional = [
            p
            for p in parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.name != "job"
            and p.default is p.empty
        ]
        self._takes_data = (
            not known
            or bool(positional)
            or any(p.kind == p.VAR_POSITIONAL for p in parameters.values())
        )

    def start(self, job: Job) -> Coroutine[Any, Any, Any]:
        """A coroutine running the function for ``job`` (the function's own coroutine
        when it is a coroutine function: no extra frame)."""
        if not self.is_async:
            return self.call(job)
        fn = self.fn
        if self.wants_job:
            coro = fn(job.data, job=job) if self._takes_data else fn(job=job)
        else:
            coro = fn(job.data) if self._takes_data else fn()
        return cast("Coroutine[Any, Any, Any]", coro)

    async def call(self, job: Job) -> Any:
        """Run the function for ``job`` and return its result."""
        args = (job.data,) if self._takes_data else ()
        kwargs = {"job": job} if self.wants_job else {}
        if self.is_async:
            return await self.fn(*args, **kwargs)
        if self.mode == "inline":
            return self.fn(*args, **kwargs)
        context = contextvars.copy_context()
        call = functools.partial(context.run, self.fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(None, call)


class Handlers:
    """Task functions by name, registered by any plugin through the service."""

    def __init__(self) -> None:
        self._by_name: dict[str, Registration] = {}
        #: The registrations by name (read-only view for the dispatcher's hot loop).
        self.by_name: Mapping[str, Registration] = self._by_name
        self.on_register: Callable[[str], None] | None = None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str) -> Registration | None:
        return self._by_name.get(name)

    def register(
        self,
        name: str,
        fn: TaskFunction,
        *,
        replace: bool = False,
        mode: str = "auto",
        defaults: dict[str, Any] | None = None,
    ) -> Registration:
        if not isinstance(name, str) or not name:
            raise InvalidTaskOptions("name", name, "a task function needs a non-empty name")
        if not callable(fn):
            raise InvalidTaskOptions("fn", fn, "register a function or coroutine function")
        if name in self._by_name and not replace and self._by_name[name].fn is not fn:
            raise DuplicateHandler(name)
        registration = Registration(name, fn, mode, dict(defaults or {}))
        self._by_name[name] = registration
        if self.on_register is not None:
            self.on_register(name)
        return registration

    def adopt(self, other: Handlers) -> None:
        """Take over another instance's registrations (hot reload)."""
        for name, registration in other._by_name.items():
            self._by_name.setdefault(name, registration)

    def unregister(self, name: str) -> bool:
        return self._by_name.pop(name, None) is not None
