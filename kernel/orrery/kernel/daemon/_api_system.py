"""Health, readiness, status and the OpenAPI document."""

from __future__ import annotations

import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from aiohttp import web

from ._endpoints import Endpoint
from ._guard import GUARD
from ._http import KERNEL, SETTINGS, json_response
from ._models import HealthOut, ReadyOut, StatusOut
from ._openapi import build_openapi
from ._streams import HUB

__all__ = ["DRAINING", "ENDPOINTS", "SYSTEM_ENDPOINTS", "init_system", "orrery_version"]

#: Every endpoint of the app, set by the app factory (the OpenAPI document reads it).
ENDPOINTS = web.AppKey[Sequence[Endpoint]]("endpoints")
#: Set while the daemon drains: readiness turns false before the listener closes.
DRAINING = web.AppKey("draining", dict)
_OPENAPI = web.AppKey("openapi_cache", dict)


def orrery_version() -> str:
    try:
        return metadata.version("orrery")
    except metadata.PackageNotFoundError:
        return "0+unknown"


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    if request.app[DRAINING].get("since") is not None:
        return json_response({"ready": False, "reason": "draining: the daemon is stopping"}, 503)
    return json_response({"ready": True, "reason": None})


async def status(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    settings = request.app[SETTINGS]
    by_state: dict[str, list[str]] = {}
    for name, info in sorted(kernel.plugins.items()):
        by_state.setdefault(str(info.state), []).append(name)
    started = kernel.started_at or time.time()
    body: dict[str, Any] = {
        "node_id": kernel.node_id,
        "version": orrery_version(),
        "url": settings.url,
        "uptime_s": round(time.time() - started, 3),
        "started_at": started,
        "bus_backend": kernel.config.bus.backend,
        "storage_backend": kernel.config.storage.backend,
        "plugins": by_state,
        "sandbox": settings.sandbox_layers if settings.sandbox_layers is not None else "unknown",
        "health": await kernel.health(),
        "streams": len(request.app[HUB]),
        "replay": request.app[HUB].replay.stats(),
        "connections": request.app[GUARD].stats() if GUARD in request.app else None,
    }
    return json_response(body)


async def openapi(request: web.Request) -> web.Response:
    # Rebuilt only when plugin routes change: the generation counter says when.
    app = request.app
    table = app[KERNEL].routes
    cache = app[_OPENAPI]
    if cache.get("generation") != table.generation:
        cache["document"] = build_openapi(
            app[ENDPOINTS], table.routes(), version=orrery_version(), url=app[SETTINGS].url
        )
        cache["generation"] = table.generation
    return json_response(cache["document"])


def init_system(app: web.Application) -> None:
    """Per-app state the system endpoints keep."""
    app[DRAINING] = {}
    app[_OPENAPI] = {}


_TAG = "system"
SYSTEM_ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/health",
        health,
        "health",
        "Liveness: the daemon answers",
        _TAG,
        response=HealthOut,
        public=True,
    ),
    Endpoint(
        "GET",
        "/v1/ready",
        ready,
        "ready",
        "Readiness: plugins started and not draining",
        _TAG,
        response=ReadyOut,
        public=True,
        errors=(503,),
    ),
    Endpoint(
        "GET",
        "/v1/status",
        status,
        "status",
        "Node id, uptime, bus backend, plugins by state, sandbox layers",
        _TAG,
        response=StatusOut,
    ),
    Endpoint(
        "GET",
        "/v1/openapi.json",
        openapi,
        "openapi",
        "This OpenAPI 3.1 document",
        _TAG,
        response=dict[str, Any],
    ),
)
