"""The aiohttp application: core endpoints, plugin routes, streams, one middleware."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web
from orrery.kernel import Kernel, provide_introspection

from ._api_events import EVENT_ENDPOINTS
from ._api_logs import LOG_ENDPOINTS, LOGS
from ._api_metrics import METRICS_ENDPOINT, METRICS_PATH
from ._api_plugins import PLUGIN_ENDPOINTS
from ._api_requests import REQUEST_ENDPOINTS
from ._api_system import ENDPOINTS, SYSTEM_ENDPOINTS, init_system
from ._endpoints import Endpoint
from ._guard import GUARD, ConnectionGuard
from ._http import KERNEL, PUBLIC_PATHS, SETTINGS, DaemonSettings, api_middleware
from ._logs import LogBuffer
from ._mount import mount_plugin_routes
from ._streams import HUB, StreamHub

__all__ = ["API_ENDPOINTS", "build_app"]

#: Every core operation, in registration order (specific paths before parameterised ones).
API_ENDPOINTS: tuple[Endpoint, ...] = (
    *SYSTEM_ENDPOINTS,
    METRICS_ENDPOINT,
    *EVENT_ENDPOINTS,
    *REQUEST_ENDPOINTS,
    *LOG_ENDPOINTS,
    *PLUGIN_ENDPOINTS,
)


def _endpoints(settings: DaemonSettings) -> tuple[Endpoint, ...]:
    """The table as this daemon serves it: ``--metrics-open`` makes the scrape public."""
    if not settings.metrics_open:
        return API_ENDPOINTS
    return tuple(
        dataclasses.replace(e, public=True) if e is METRICS_ENDPOINT else e for e in API_ENDPOINTS
    )


def build_app(
    kernel: Kernel,
    settings: DaemonSettings,
    *,
    guard: ConnectionGuard | None = None,
    logs: LogBuffer | None = None,
) -> web.Application:
    """The HTTP API over a started ``kernel`` (``guard``: the listener's connection
    limits, told when each request is answered; ``logs``: plugin log records collected
    since before the kernel started, else from when the app starts)."""
    endpoints = _endpoints(settings)
    public = PUBLIC_PATHS | {METRICS_PATH} if settings.metrics_open else PUBLIC_PATHS
    # The kernel's introspection service (shared with the metrics plugin) gets the
    # per-route HTTP statistics; registered here if the kernel has not done so itself.
    stats = provide_introspection(kernel).http
    app = web.Application(
        middlewares=[
            api_middleware(
                settings.token,
                public_paths=public,
                stats=stats,
                on_answered=guard.request_done if guard is not None else None,
            )
        ],
        client_max_size=settings.max_body_size,
    )
    app[KERNEL] = kernel
    app[SETTINGS] = settings
    if guard is not None:
        app[GUARD] = guard
    app[ENDPOINTS] = endpoints
    init_system(app)
    hub = StreamHub(
        kernel.bus,
        replay_size=settings.replay_size,
        replay_bytes=settings.replay_bytes,
        stream_queue=settings.stream_queue,
    )
    app[HUB] = hub
    own_logs = logs is None
    app[LOGS] = collected = LogBuffer() if logs is None else logs

    async def start_streams(app: web.Application) -> None:
        hub.start()
        if own_logs:
            collected.attach(asyncio.get_running_loop())

    async def stop_streams(app: web.Application) -> None:
        # on_shutdown runs after the listener closed and before in-flight requests are
        # awaited: ending the endless streams here is what lets the drain finish.
        hub.stop()
        collected.detach()

    app.on_startup.append(start_streams)
    app.on_shutdown.append(stop_streams)
    for endpoint in endpoints:
        endpoint.register(app.router)
    mount_plugin_routes(app, kernel.routes)
    return app
