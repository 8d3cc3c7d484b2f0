"""The HTTP side of a sandboxed plugin's Context: routes, and the requests they get."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from orrery.sdk import HttpRequest, PermissionDenied

from ._protocol import CALL

if TYPE_CHECKING:
    from ._worker import WorkerRuntime

__all__ = ["WorkerHttp", "WorkerHttpRequest"]


class _Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively as HTTP wants."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._items = {k.lower(): (k, v) for k, v in raw.items()}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)


class WorkerHttpRequest:
    """The request a route handler receives, rebuilt from the host's dict."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.method: str = row["method"]
        self.path: str = row["path"]
        self.params: Mapping[str, str] = row.get("params") or {}
        self.query: Mapping[str, str] = row.get("query") or {}
        self.headers: Mapping[str, str] = _Headers(row.get("headers") or {})
        self.content_type: str = row.get("content_type") or ""
        self.principal: str = row.get("principal") or ""
        self._body: Any = row.get("body")

    async def json(self) -> Any:
        return self._body


class WorkerHttp:
    def __init__(self, rt: WorkerRuntime) -> None:
        self._rt = rt

    def route(
        self,
        method: str,
        path: str,
        handler: Callable[[HttpRequest], Awaitable[Any] | Any],
    ) -> None:
        rt = self._rt
        route_id = next(rt.ids)
        allowed = rt.permissions.allows("http.route")
        if allowed:
            rt.routes[route_id] = handler
        rt.send([CALL, 0, "http.route", route_id, method, path])
        if not allowed:
            raise PermissionDenied(rt.name, "http.route")
