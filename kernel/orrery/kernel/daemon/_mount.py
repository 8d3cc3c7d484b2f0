"""Plugin routes (``ctx.http.route``) served under ``/v1/plugins/<name>/...``.

A route handler's `orrery.sdk.HttpError` answers with its status; a `LookupError`
answers 404 and a `ValueError` 400 (``orrery.sdk.http`` helpers raise those with the
parameter named); anything else is a 500 logged with its traceback.

Dispatch is dynamic: the kernel's route table is consulted on each request (its compiled
form is cached per table generation), so routes appear and disappear with their plugins
without touching the aiohttp router.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web
from orrery.kernel.plugins import Route, RouteTable
from orrery.sdk import HttpError as PluginHttpError
from orrery.sdk import HttpResponse, PermissionDenied, ServiceNotFound

from ._http import KERNEL, ROUTE_TEMPLATE, authorize, json_response, principal_of
from .errors import HttpError

__all__ = ["PluginRequest", "PluginRouter", "compile_path", "mount_plugin_routes"]

log = logging.getLogger("orrery.kernel.daemon")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def compile_path(path: str) -> re.Pattern[str]:
    """``/tasks/{id}`` -> a regex with a named group per parameter (one path segment)."""
    pattern, last = [], 0
    for m in _PARAM.finditer(path):
        pattern.append(re.escape(path[last : m.start()]))
        pattern.append(f"(?P<{m.group(1)}>[^/]+)")
        last = m.end()
    pattern.append(re.escape(path[last:]))
    return re.compile("".join(pattern))


class PluginRequest:
    """What a plugin route handler receives (implements `orrery.sdk.HttpRequest`).

    ``path`` is relative to the plugin's mount point (``/tasks/7``), so a plugin's code
    does not depend on where the daemon mounts it.
    """

    __slots__ = ("_params", "_path", "_principal", "_query", "_request")

    def __init__(
        self, request: web.Request, path: str, params: dict[str, str], principal: str
    ) -> None:
        self._request = request
        self._path = path
        self._params = params
        self._principal = principal
        self._query: dict[str, str] | None = None

    @property
    def method(self) -> str:
        return self._request.method

    @property
    def path(self) -> str:
        return self._path

    @property
    def params(self) -> Mapping[str, str]:
        return self._params

    @property
    def query(self) -> Mapping[str, str]:
        if self._query is None:
            # One value per name (the first), which is what route handlers expect.
            self._query = {}
            for key, value in self._request.query.items():
                self._query.setdefault(key, value)
        return self._query

    @property
    def headers(self) -> Mapping[str, str]:
        return self._request.headers

    @property
    def principal(self) -> str:
        return self._principal

    async def json(self) -> Any:
        """The JSON body (None when empty); a malformed one answers 400 by itself."""
        raw = await self._request.read()
        if not raw.strip():
            return None
        try:
            return _decode(raw)
        except (msgspec.DecodeError, RecursionError) as e:
            raise HttpError(400, f"the body is not valid JSON: {e}", field="body") from e


class PluginRouter:
    """Matches ``(plugin, method, relative path)`` against the kernel's route table."""

    def __init__(self, table: RouteTable) -> None:
        self._table = table
        self._generation = -1
        self._compiled: dict[str, list[tuple[re.Pattern[str], Route]]] = {}

    def _refresh(self) -> None:
        if self._generation == self._table.generation:
            return
        compiled: dict[str, list[tuple[re.Pattern[str], Route]]] = {}
        for route in self._table.routes():
            compiled.setdefault(route.plugin, []).append((compile_path(route.path), route))
        self._compiled = compiled
        self._generation = self._table.generation

    def match(
        self, plugin: str, method: str, path: str
    ) -> tuple[Route | None, dict[str, str], list[str]]:
        """The route and its path parameters, or None and the methods allowed at ``path``."""
        self._refresh()
        allowed: list[str] = []
        for regex, route in self._compiled.get(plugin, ()):
            m = regex.fullmatch(path)
            if m is None:
                continue
            if route.method == method:
                return route, m.groupdict(), []
            allowed.append(route.method)
        return None, {}, allowed


async def _dispatch(request: web.Request) -> web.StreamResponse:
    plugin = request.match_info["plugin"]
    path = "/" + request.match_info.get("tail", "")
    method = request.method
    kernel = request.app[KERNEL]
    route, params, allowed = request.app[ROUTER].match(plugin, method, path)
    if route is None:
        if allowed:
            raise HttpError(
                405,
                f"plugin {plugin!r} serves {path} only with {', '.join(sorted(allowed))}",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        known = plugin in kernel.plugins
        raise HttpError(
            404,
            f"plugin {plugin!r} has no route {method} {path}; GET /v1/openapi.json lists the "
            f"mounted routes"
            if known
            else f"no plugin named {plugin!r} serves routes here",
        )
    request[ROUTE_TEMPLATE] = route.mount_path
    principal = principal_of(request)
    if method != "GET":
        await authorize(request, f"http.{method.lower()}", f"{plugin}{path}")
    try:
        result = route.handler(PluginRequest(request, path, params, principal))
        if inspect.isawaitable(result):
            result = await result
    except (HttpError, web.HTTPException):
        raise  # bad JSON (400) or a too-large body (413) met by the plugin's request.json()
    except PermissionDenied as e:
        raise HttpError(403, str(e)) from e
    except PluginHttpError as e:
        raise HttpError(e.status, str(e), field=e.field) from e
    except ServiceNotFound as e:
        # A LookupError too, but the fault is a missing provider, not the URL.
        raise HttpError(503, str(e)) from e
    except LookupError as e:
        raise HttpError(404, _message(e, f"not found: {method} {path}")) from e
    except ValueError as e:
        raise HttpError(400, _message(e, f"bad request: {method} {path}")) from e
    except Exception as e:
        log.exception("plugin %s: route %s %s raised", plugin, method, route.path)
        raise HttpError(
            500, f"plugin {plugin!r} failed on {method} {path}; the daemon log has the details"
        ) from e
    if isinstance(result, HttpResponse):
        body = result.body.encode() if isinstance(result.body, str) else result.body
        return web.Response(
            body=body,
            status=result.status,
            headers={**result.headers, "Content-Type": result.content_type},
        )
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    try:
        return json_response(result)
    except (TypeError, msgspec.EncodeError) as e:
        log.error("plugin %s: route %s %s returned non-JSON %r", plugin, method, route.path, result)
        raise HttpError(
            500, f"plugin {plugin!r} returned something that is not JSON-able from {path}"
        ) from e


def _message(e: Exception, fallback: str) -> str:
    # KeyError's str() is the repr of its key; its bare argument reads better.
    if isinstance(e, KeyError) and len(e.args) == 1:
        return f"not found: {e.args[0]}"
    return str(e) or fallback


ROUTER = web.AppKey("plugin_router", PluginRouter)


def mount_plugin_routes(app: web.Application, table: RouteTable) -> None:
    """Add the catch-all routes; call after the core API so its routes win."""
    app[ROUTER] = PluginRouter(table)
    app.router.add_route("*", "/v1/plugins/{plugin}", _dispatch, name="pluginRoot")
    app.router.add_route("*", "/v1/plugins/{plugin}/{tail:.*}", _dispatch, name="pluginRoute")
