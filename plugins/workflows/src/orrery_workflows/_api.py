"""One command table, served as bus request topics (``workflows.<command>``) and as the
HTTP routes of DESIGN.md §11 under ``/v1/plugins/workflows``.

Over HTTP, an unknown workflow or run is a 404, a refused definition or argument a 400
naming the line or field, a decision or cancel the run's state does not allow a 409.
Over the bus, errors come back as ``{"error": {"type", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from orrery.sdk import Bus, Event, HttpError, HttpRequest, HttpRoutes

from ._service import WorkflowsService
from .errors import InvalidDecision, RunFinished, WorkflowsError

__all__ = ["Commands"]

Command = Callable[[dict[str, Any]], Awaitable[Any]]
#: command -> (HTTP method, path; None: bus only)
Route = tuple[str, str | None]


def _str(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"give {name!r} as a non-empty string")
    return value


def _opt_int(args: dict[str, Any], name: str) -> int | None:
    value = args.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name!r} must be an integer, got {value!r}") from e


class Commands:
    """``name -> (route, handler)``; each handler takes and returns JSON."""

    def __init__(self, service: WorkflowsService) -> None:
        self.service = service
        self.table: dict[str, tuple[Route, Command]] = {
            "start": (("POST", "/runs"), self._start),
            "runs": (("GET", "/runs"), self._runs),
            "get": (("GET", "/runs/{id}"), self._get),
            "history": (("GET", "/runs/{id}/events"), self._history),
            "cancel": (("POST", "/runs/{id}/cancel"), self._cancel),
            "approvals": (("GET", "/approvals"), self._approvals),
            "decide": (("POST", "/runs/{id}/approvals/{step}"), self._decide),
            "workflows": (("GET", "/workflows"), self._workflows),
            "workflow": (("GET", "/workflows/{name}"), self._workflow),
            "put": (("PUT", "/workflows/{name}"), self._put),
            "validate": (("POST", "/validate"), self._validate),
        }

    async def _start(self, args: dict[str, Any]) -> Any:
        run_id = await self.service.start(
            _str(args, "workflow"), args.get("input"), _opt_int(args, "version")
        )
        wait = args.get("wait")
        if wait:
            timeout = 60.0 if wait is True else float(wait)
            return {"id": run_id, "run": await self.service.wait(run_id, timeout)}
        return {"id": run_id}

    async def _runs(self, args: dict[str, Any]) -> Any:
        limit = _opt_int(args, "limit") or 100
        return await self.service.runs(
            args.get("workflow") or None, args.get("status") or None, max(1, min(limit, 10_000))
        )

    async def _get(self, args: dict[str, Any]) -> Any:
        return await self.service.run(_str(args, "id"))

    async def _history(self, args: dict[str, Any]) -> Any:
        return await self.service.history(_str(args, "id"))

    async def _cancel(self, args: dict[str, Any]) -> Any:
        return await self.service.cancel(_str(args, "id"), args.get("by"), args.get("reason"))

    async def _approvals(self, args: dict[str, Any]) -> Any:
        return await self.service.approvals(args.get("workflow") or None)

    async def _decide(self, args: dict[str, Any]) -> Any:
        approved = args.get("approved")
        if not isinstance(approved, bool):
            raise ValueError("give 'approved' as true or false")
        return await self.service.decide(
            _str(args, "id"),
            _str(args, "step"),
            approved,
            args.get("by") or args.get("principal"),
            args.get("comment"),
            args.get("data"),
        )

    async def _workflows(self, args: dict[str, Any]) -> Any:
        return self.service.workflows()

    async def _workflow(self, args: dict[str, Any]) -> Any:
        return self.service.workflow(_str(args, "name"), _opt_int(args, "version"))

    async def _put(self, args: dict[str, Any]) -> Any:
        name = _str(args, "name")
        body: Any = args.get("yaml")
        if not isinstance(body, str):
            body = {k: v for k, v in args.items() if k not in ("yaml", "principal")}
            body.setdefault("name", name)
        answer = await self.service.put_workflow(body, source=f"PUT workflows/{name}")
        if answer["name"] != name:
            raise ValueError(f"the definition is named {answer['name']!r}, not {name!r}")
        return answer

    async def _validate(self, args: dict[str, Any]) -> Any:
        return self.service.validate(_str(args, "yaml"), source=str(args.get("source") or "api"))

    def subscribe(self, bus: Bus, *, prefix: str) -> None:
        for name, (_, command) in self.table.items():
            bus.subscribe(f"{prefix}.{name}", _on_request(command))

    def mount(self, http: HttpRoutes) -> None:
        for (method, path), command in self.table.values():
            if path is not None:
                http.route(method, path, _on_http(method, command))


def _on_request(command: Command) -> Callable[[Event], Awaitable[Any]]:
    async def handle(event: Event) -> Any:
        args = event.data if isinstance(event.data, dict) else {}
        try:
            return await command(args)
        except (WorkflowsError, ValueError, LookupError, TimeoutError) as e:
            return {"error": {"type": type(e).__name__, "message": str(e)}}

    return handle


def _on_http(method: str, command: Command) -> Callable[[HttpRequest], Awaitable[Any]]:
    async def handle(request: HttpRequest) -> Any:
        body = dict(request.query) if method == "GET" else await request.json()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise HttpError(400, "send a JSON object as the body", field="body")
        body.update(request.params)
        # Who decides an approval, unless the body says: the authenticated caller.
        body["principal"] = request.principal
        try:
            return await command(body)
        except (RunFinished, InvalidDecision) as e:
            raise HttpError(409, str(e)) from e
        except TimeoutError as e:
            raise HttpError(504, str(e)) from e

    return handle
