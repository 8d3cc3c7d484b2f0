"""The aiohttp application: core endpoints, plugin routes, streams, one middleware."""

from __future__ import annotations

from aiohttp import web
from orrery.kernel._kernel import Kernel

from ._api_events import EVENT_ENDPOINTS
from ._api_plugins import PLUGIN_ENDPOINTS
from ._api_system import ENDPOINTS, SYSTEM_ENDPOINTS, init_system
from ._endpoints import Endpoint
from ._http import KERNEL, SETTINGS, DaemonSettings, api_middleware
from ._mount import mount_plugin_routes
from ._streams import HUB, StreamHub

__all__ = ["API_ENDPOINTS", "build_app"]

#: Every core operation, in registration order (specific paths before parameterised ones).
API_ENDPOINTS: tuple[Endpoint, ...] = (*SYSTEM_ENDPOINTS, *EVENT_ENDPOINTS, *PLUGIN_ENDPOINTS)


def build_app(kernel: Kernel, settings: DaemonSettings) -> web.Application:
    """The HTTP API over a started ``kernel``."""
    app = web.Application(
        middlewares=[api_middleware(settings.token)], client_max_size=settings.max_body_size
    )
    app[KERNEL] = kernel
    app[SETTINGS] = settings
    app[ENDPOINTS] = API_ENDPOINTS
    init_system(app)
    hub = StreamHub(
        kernel.bus, replay_size=settings.replay_size, stream_queue=settings.stream_queue
    )
    app[HUB] = hub

    async def start_streams(app: web.Application) -> None:
        hub.start()

    async def stop_streams(app: web.Application) -> None:
        # on_shutdown runs after the listener closed and before in-flight requests are
        # awaited: ending the endless streams here is what lets the drain finish.
        hub.stop()

    app.on_startup.append(start_streams)
    app.on_shutdown.append(stop_streams)
    for endpoint in API_ENDPOINTS:
        endpoint.register(app.router)
    mount_plugin_routes(app, kernel.routes)
    return app
