"""One command table, served as bus request topics (``workflows.<command>``) and as HTTP
routes (``/v1/plugins/workflows/<command>``).

Over HTTP a bad argument is a 400 naming the field (the daemon maps `ValueError`);
over the bus, errors come back as ``{"error": {"type", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from orrery.sdk import Bus, Event, HttpError, HttpRequest, HttpRoutes

from ._service import WorkflowsService
from .errors import WorkflowsError

__all__ = ["Commands"]

Command = Callable[[dict[str, Any]], Awaitable[Any]]


class Commands:
    """``name -> (HTTP method, handler)``; each handler takes and returns JSON."""

    def __init__(self, service: WorkflowsService) -> None:
        self.service = service
        self.table: dict[str, tuple[str, Command]] = {
            "ping": ("POST", self._ping),
            "stats": ("GET", self._stats),
            "reset": ("POST", self._reset),
        }

    async def _ping(self, args: dict[str, Any]) -> Any:
        return await self.service.ping(args.get("who"))

    async def _stats(self, args: dict[str, Any]) -> Any:
        return self.service.stats()

    async def _reset(self, args: dict[str, Any]) -> Any:
        return await self.service.reset()

    def subscribe(self, bus: Bus, *, prefix: str) -> None:
        for name, (_, command) in self.table.items():
            bus.subscribe(f"{prefix}.{name}", _on_request(command))

    def mount(self, http: HttpRoutes) -> None:
        for name, (method, command) in self.table.items():
            http.route(method, f"/{name}", _on_http(method, command))


def _on_request(command: Command) -> Callable[[Event], Awaitable[Any]]:
    async def handle(event: Event) -> Any:
        args = event.data if isinstance(event.data, dict) else {}
        try:
            return await command(args)
        except WorkflowsError as e:
            return {"error": {"type": type(e).__name__, "message": str(e)}}

    return handle


def _on_http(method: str, command: Command) -> Callable[[HttpRequest], Awaitable[Any]]:
    async def handle(request: HttpRequest) -> Any:
        body = dict(request.query) if method == "GET" else await request.json()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise HttpError(400, "send a JSON object as the body", field="body")
        return await command(body)

    return handle
