"""``GET /metrics``: the Prometheus scrape endpoint, at the root path scrapers expect.

The daemon knows nothing of metrics: it asks the service ``metrics.exposition`` (which
the metrics plugin provides while it is active) for ``(content_type, body)`` and sends
that as is. Without the plugin the endpoint answers 404 and says how to get it.
"""

from __future__ import annotations

from aiohttp import web
from orrery.sdk import ServiceNotFound

from ._endpoints import Endpoint
from ._http import KERNEL
from .errors import HttpError

__all__ = ["EXPOSITION_SERVICE", "METRICS_ENDPOINT", "METRICS_PATH", "prometheus_metrics"]

#: Service a plugin provides to answer scrapes: ``() -> (content_type, body: bytes)``.
EXPOSITION_SERVICE = "metrics.exposition"
METRICS_PATH = "/metrics"


async def prometheus_metrics(request: web.Request) -> web.Response:
    """One scrape, answered by the metrics plugin's exposition service."""
    try:
        expose = request.app[KERNEL].services.get(EXPOSITION_SERVICE)
    except ServiceNotFound:
        raise HttpError(
            404,
            "no metrics to expose: the metrics plugin is not active here; install it "
            "(orrery plugins install orrery-metrics) or enable it (orrery plugins enable "
            "metrics)",
        ) from None
    content_type, body = expose()
    return web.Response(body=body, headers={"Content-Type": content_type})


METRICS_ENDPOINT = Endpoint(
    "GET",
    METRICS_PATH,
    prometheus_metrics,
    "metrics",
    "Prometheus exposition of every metric (needs the metrics plugin)",
    "system",
    response=str,
    media_type="text/plain; version=0.0.4; charset=utf-8",
    errors=(404,),
    description="Prometheus text exposition format, served by the metrics plugin. Needs the "
    "bearer token like the rest of the API (Prometheus: 'authorization' or "
    "'bearer_token_file'), unless the daemon runs with --metrics-open. 404 when the metrics "
    "plugin is not active.",
)
