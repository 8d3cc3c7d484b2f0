"""HTTP routes that plugins register; the daemon mounts them under /v1/plugins/<name>/."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from orrery.sdk import HttpRequest

from ..errors import PluginError

__all__ = ["METHODS", "PluginRoutes", "Route", "RouteTable"]

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PATH = re.compile(r"/(?:[A-Za-z0-9._~-]+|\{[A-Za-z_][A-Za-z0-9_]*\})?(?:/(?:[A-Za-z0-9._~-]+|\{[A-Za-z_][A-Za-z0-9_]*\}))*")

RouteHandler = Callable[[HttpRequest], Awaitable[Any] | Any]


@dataclass(frozen=True)
class Route:
    plugin: str
    method: str
    path: str
    handler: RouteHandler

    @property
    def mount_path(self) -> str:
        return f"/v1/plugins/{self.plugin}{self.path if self.path != '/' else ''}"


class RouteTable:
    """Every plugin route, keyed by (plugin, method, path)."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str, str], Route] = {}
        #: Bumped on every change so a web server knows to remount.
        self.generation = 0

    def add(self, plugin: str, method: str, path: str, handler: RouteHandler) -> Route:
        verb = method.upper() if isinstance(method, str) else method
        if verb not in METHODS:
            raise PluginError(
                f"plugin {plugin!r}: HTTP method {method!r} is not supported; use one of "
                f"{', '.join(sorted(METHODS))}",
                plugin=plugin,
            )
        if not isinstance(path, str) or not _PATH.fullmatch(path):
            raise PluginError(
                f"plugin {plugin!r}: route path {path!r} is invalid; use e.g. '/tasks' or "
                f"'/tasks/{{id}}' (it is mounted under /v1/plugins/{plugin})",
                plugin=plugin,
            )
        if not callable(handler):
            raise PluginError(f"plugin {plugin!r}: route handler must be callable", plugin=plugin)
        key = (plugin, verb, path)
        if key in self._routes:
            raise PluginError(
                f"plugin {plugin!r} already has a route {verb} {path}", plugin=plugin
            )
        route = Route(plugin, verb, path, handler)
        self._routes[key] = route
        self.generation += 1
        return route

    def remove_all(self, plugin: str) -> int:
        gone = [k for k in self._routes if k[0] == plugin]
        for k in gone:
            del self._routes[k]
        if gone:
            self.generation += 1
        return len(gone)

    def routes(self, plugin: str | None = None) -> list[Route]:
        return [r for k, r in sorted(self._routes.items()) if plugin is None or k[0] == plugin]


class PluginRoutes:
    """``ctx.http`` of one plugin."""

    __slots__ = ("_owner", "_table")

    def __init__(self, table: RouteTable, owner: str) -> None:
        self._table = table
        self._owner = owner

    def route(self, method: str, path: str, handler: RouteHandler) -> None:
        self._table.add(self._owner, method, path, handler)

    def release(self) -> int:
        return self._table.remove_all(self._owner)
