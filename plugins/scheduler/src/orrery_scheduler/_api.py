"""The scheduler's remote API: bus request topics and HTTP routes over one set of
commands. Over the bus, errors come back as ``{"error": {"type", "message"}}`` (a reply
has no status); over HTTP they are 4xx answers: 404 for an unknown task, schedule or
command, 409 for a transition the task's state does not allow, 400 for bad input."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from orrery.sdk import Bus, Event, HttpError, HttpRequest, HttpRoutes

from ._service import Scheduler
from .errors import InvalidTransition, SchedulerError, SchedulerStopped

__all__ = ["Commands", "TOPIC_PREFIX"]

#: Request topics are ``scheduler.<command>`` (e.g. ``scheduler.add``).
TOPIC_PREFIX = "scheduler"

Command = Callable[[dict[str, Any]], Awaitable[Any]]


_FAILURES = (SchedulerError, ValueError, TypeError, LookupError, TimeoutError)


def _error(e: Exception) -> dict[str, Any]:
    return {"error": {"type": type(e).__name__, "message": str(e)}}


def _http_status(e: Exception) -> int:
    if isinstance(e, LookupError):
        return 404
    if isinstance(e, InvalidTransition):
        return 409
    if isinstance(e, SchedulerStopped):
        return 503
    if isinstance(e, TimeoutError):
        return 504
    return 400


def _limit(raw: Any) -> int:
    try:
        return max(1, min(10_000, int(raw)))
    except (TypeError, ValueError):
        return 100


def _number(raw: Any) -> float | None:
    if raw in (None, ""):
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


class Commands:
    """One handler per command, each taking a JSON object and returning JSON."""

    def __init__(self, scheduler: Scheduler) -> None:
        s = self.scheduler = scheduler
        self.table: dict[str, Command] = {
            "add": self._add,
            "get": self._by_id(lambda i: _sync(s.get(i))),
            "list": self._list,
            "cancel": self._by_id(s.cancel),
            "pause": self._by_id(s.pause),
            "resume": self._by_id(s.resume),
            "retry": self._by_id(s.retry),
            "stats": lambda _: _sync(s.stats()),
            "clear": self._clear,
            "schedule": self._schedule,
            "unschedule": self._by_id(s.unschedule, key="id"),
            "schedules": lambda _: _sync(s.schedules()),
            "functions": lambda _: _sync(s.functions()),
            "queue": self._queue,
        }

    async def run(self, command: str, payload: Any) -> Any:
        """Run ``command``; scheduler errors become an ``error`` object."""
        try:
            return await self._execute(command, payload)
        except _FAILURES as e:
            return _error(e)

    async def run_http(self, command: str, payload: Any) -> Any:
        """Run ``command``; scheduler errors become 4xx answers."""
        try:
            return await self._execute(command, payload)
        except _FAILURES as e:
            raise HttpError(_http_status(e), f"{type(e).__name__}: {e}") from e

    async def _execute(self, command: str, payload: Any) -> Any:
        handler = self.table.get(command)
        if handler is None:
            raise KeyError(f"unknown command {command!r}; use {sorted(self.table)}")
        return await handler(payload if isinstance(payload, dict) else {})

    def _by_id(self, action: Callable[[str], Awaitable[Any]], key: str = "id") -> Command:
        async def run(payload: dict[str, Any]) -> Any:
            value = payload.get(key)
            if not isinstance(value, str):
                raise ValueError(f"give the task or schedule {key!r} as a string")
            return await action(value)

        return run

    async def _add(self, payload: dict[str, Any]) -> Any:
        fields = dict(payload)
        name = fields.pop("name", None)
        if not isinstance(name, str):
            raise ValueError('give the task function as "name"')
        data = fields.pop("data", None)
        options = fields.pop("options", None) or {}
        options.update(fields)
        wait = options.pop("wait", None)
        task_id = await self.scheduler.add(name, data, **options)
        if wait:
            return await self.scheduler.wait(task_id, timeout=_number(wait))
        return self.scheduler.get(task_id)

    async def _list(self, payload: dict[str, Any]) -> Any:
        return self.scheduler.tasks(
            state=payload.get("state") or None,
            queue=payload.get("queue") or None,
            name=payload.get("name") or None,
            limit=_limit(payload.get("limit", 100)),
        )

    async def _clear(self, payload: dict[str, Any]) -> Any:
        states = payload.get("states") or ["completed"]
        if isinstance(states, str):
            states = states.split(",")
        cleared = await self.scheduler.clear(states, _number(payload.get("before")))
        return {"cleared": cleared}

    async def _schedule(self, payload: dict[str, Any]) -> Any:
        fields = dict(payload)
        name = fields.pop("name", None)
        if not isinstance(name, str):
            raise ValueError('give the task function as "name"')
        data = fields.pop("data", None)
        options = fields.pop("options", None) or {}
        options.update(fields)
        return await self.scheduler.schedule(name, data, **options)

    async def _queue(self, payload: dict[str, Any]) -> Any:
        queue = payload.get("queue")
        if not isinstance(queue, str):
            raise ValueError('give the queue name as "queue"')
        paused = bool(payload.get("paused", True))
        await self.scheduler.pause_queue(queue, paused)
        return {"queue": queue, "paused": paused}

    # -- mounting --------------------------------------------------------------------

    def subscribe(self, bus: Bus) -> None:
        """Answer requests on ``scheduler.<command>``."""
        for command in self.table:
            bus.subscribe(f"{TOPIC_PREFIX}.{command}", self._bus_handler(command))

    def _bus_handler(self, command: str) -> Callable[[Event], Awaitable[Any]]:
        async def handle(event: Event) -> Any:
            return await self.run(command, event.data)

        return handle

    def mount(self, http: HttpRoutes) -> None:
        """Routes under /v1/plugins/scheduler/."""
        route = http.route
        route("GET", "/tasks", self._http(lambda r: ("list", dict(r.query))))
        route("POST", "/tasks", self._http_body("add"))
        route("GET", "/tasks/{id}", self._http(lambda r: ("get", {"id": r.params["id"]})))
        for action in ("cancel", "pause", "resume", "retry"):
            route("POST", f"/tasks/{{id}}/{action}", self._http_id(action))
        route("GET", "/stats", self._http(lambda r: ("stats", {})))
        route("POST", "/clear", self._http_body("clear"))
        route("GET", "/schedules", self._http(lambda r: ("schedules", {})))
        route("POST", "/schedules", self._http_body("schedule"))
        route("DELETE", "/schedules/{id}", self._http_id("unschedule"))
        route("GET", "/functions", self._http(lambda r: ("functions", {})))
        route("POST", "/queues/{queue}/pause", self._http_queue(True))
        route("POST", "/queues/{queue}/resume", self._http_queue(False))

    def _http(
        self, parse: Callable[[HttpRequest], tuple[str, dict[str, Any]]]
    ) -> Callable[[HttpRequest], Awaitable[Any]]:
        async def handle(request: HttpRequest) -> Any:
            command, payload = parse(request)
            return await self.run_http(command, payload)

        return handle

    def _http_body(self, command: str) -> Callable[[HttpRequest], Awaitable[Any]]:
        async def handle(request: HttpRequest) -> Any:
            body = await request.json()
            return await self.run_http(command, body if isinstance(body, dict) else {})

        return handle

    def _http_id(self, command: str) -> Callable[[HttpRequest], Awaitable[Any]]:
        return self._http(lambda r: (command, {"id": r.params["id"]}))

    def _http_queue(self, paused: bool) -> Callable[[HttpRequest], Awaitable[Any]]:
        return self._http(lambda r: ("queue", {"queue": r.params["queue"], "paused": paused}))


async def _sync(value: Any) -> Any:
    return value
