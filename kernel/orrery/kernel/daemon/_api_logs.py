"""``GET /v1/logs``: recent plugin log records, optionally waiting for new ones."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ._endpoints import Endpoint, Param
from ._http import KERNEL, json_response
from ._logs import LogBuffer
from ._models import LogsOut
from .errors import HttpError

__all__ = ["LOGS", "LOG_ENDPOINTS"]

LOGS = web.AppKey("logs", LogBuffer)
_LEVELS = ("debug", "info", "warning", "error", "critical")


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(422, f"{name} must be an integer, got {raw!r}", field=name) from None
    if not low <= value <= high:
        raise HttpError(422, f"{name} must be between {low} and {high}, got {value}", field=name)
    return value


async def get_logs(request: web.Request) -> web.Response:
    buffer = request.app[LOGS]
    plugin = request.query.get("plugin") or None
    if plugin is not None and plugin not in request.app[KERNEL].plugins:
        if plugin not in buffer.plugins():
            known = ", ".join(sorted(request.app[KERNEL].plugins)) or "none"
            raise HttpError(404, f"no plugin {plugin!r}; known plugins: {known}", field="plugin")
    level_name = request.query.get("level", "debug").lower()
    if level_name not in _LEVELS:
        raise HttpError(
            422, f"unknown level {level_name!r}; use one of {', '.join(_LEVELS)}", field="level"
        )
    level = logging.getLevelName(level_name.upper())
    after = _int(request, "after", 0, 0, 1 << 62)
    limit = _int(request, "limit", 200, 1, 5000)
    wait = _int(request, "wait", 0, 0, 60)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        records, latest = buffer.since(after, plugin=plugin, level=level, limit=limit)
        remaining = deadline - loop.time()
        if records or remaining <= 0:
            break
        if buffer.closed:
            break
        # Nothing matching yet: wait for any new record, then look again.
        await buffer.wait(latest, remaining)
    return json_response({"records": records, "next": records[-1]["seq"] if records else latest})


LOG_ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/logs",
        get_logs,
        "getLogs",
        "Recent log records of plugins (ctx.log), optionally waiting for new ones",
        "plugins",
        response=LogsOut,
        params=(
            Param("plugin", "query", "Only this plugin's records"),
            Param("level", "query", "Lowest level shown: debug, info, warning, error"),
            Param(
                "after",
                "query",
                "Only records after this sequence number ('next')",
                schema={"type": "integer", "minimum": 0},
            ),
            Param(
                "limit",
                "query",
                "At most this many (the newest), default 200",
                schema={"type": "integer", "minimum": 1, "maximum": 5000},
            ),
            Param(
                "wait",
                "query",
                "Seconds to wait for a record when there is none yet "
                "(long polling; 0-60, default 0)",
                schema={"type": "integer", "minimum": 0, "maximum": 60},
            ),
        ),
        errors=(404, 422),
        description="Follow with ?after=<next>&wait=30 in a loop. The daemon keeps the "
        "newest 5000 records in memory; what the daemon's log level filters out never "
        "reaches it.",
    ),
)
