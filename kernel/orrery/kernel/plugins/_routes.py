"""HTTP routes that plugins register; the daemon mounts them under /v1/plugins/<name>/."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from orrery.kernel.errors import PluginError
from orrery.sdk import HttpRequest

__all__ = ["METHODS", "PluginRoutes", "Route", "RouteTable"]

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PATH = re.compile(
    r"/(?:[A-Za-z0-9._~-]+|\{[A-Za-z_][A-Za-z0-9_]*\})?(?:/(?:[A-Za-z0-9._~-]+|\{[A-Za-z_][A-Za-z0-9_]*\}))*"
)

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

    def make(self, plugin: str, method: str, path: str, handler: RouteHandler) -> Route:
        """Validate a route declaration; raises `PluginError` saying what to fix."""
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
        return Route(plugin, verb, path, handler)

    def install(self, route: Route) -> None:
        """Serve ``route``, replacing the plugin's previous route for the same method and
        path (the old version's, during a hot swap)."""
        self._routes[(route.plugin, route.method, route.path)] = route
        self.generation += 1

    def remove(self, route: Route) -> bool:
        """Stop serving ``route`` unless a newer route took its place."""
        key = (route.plugin, route.method, route.path)
        if self._routes.get(key) is not route:
            return False
        del self._routes[key]
        self.generation += 1
        return True

    def routes(self, plugin: str | None = None) -> list[Route]:
        return [r for k, r in sorted(self._routes.items()) if plugin is None or k[0] == plugin]


class PluginRoutes:
    """``ctx.http`` of one plugin instance; staged like `PluginServices` during a swap."""

    __slots__ = ("_owner", "_routes", "_staged", "_table")

    def __init__(self, table: RouteTable, owner: str, *, staged: bool = False) -> None:
        self._table = table
        self._owner = owner
        self._staged = staged
        self._routes: dict[tuple[str, str], Route] = {}

    def route(self, method: str, path: str, handler: RouteHandler) -> None:
        route = self._table.make(self._owner, method, path, handler)
        key = (route.method, route.path)
        if key in self._routes:
            raise PluginError(
                f"plugin {self._owner!r} already has a route {route.method} {route.path}",
                plugin=self._owner,
            )
        self._routes[key] = route
        if not self._staged:
            self._table.install(route)

    def activate(self) -> None:
        for route in self._routes.values():
            self._table.install(route)
        self._staged = False

    def release(self) -> int:
        gone = sum(self._table.remove(route) for route in self._routes.values())
        self._routes.clear()
        return gone
