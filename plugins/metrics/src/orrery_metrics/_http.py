"""HTTP routes, mounted by the daemon under ``/v1/plugins/metrics/``.

Handlers return JSON-able data, or an `HttpResponse` for text (the Prometheus
exposition, CSV). Bad input answers 400 and unknown dashboards or metrics 404, through
`orrery.sdk.HttpError`, with a message saying what to send instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from orrery.sdk import HttpError, HttpRequest, HttpResponse, HttpRoutes
from pydantic import ValidationError

from ._alerts import AlertManager
from ._dashboards import Dashboard, DashboardBook, render_dashboard
from ._engine import MetricsEngine
from ._export import (
    Exposition,
    export_csv,
    export_json,
    export_series_csv,
    metric_json,
    prometheus_exposition,
)
from ._forecast import HoltForecaster
from ._registry import MetricsRegistry
from ._timeseries import SeriesKey, SeriesStore
from .errors import MetricsError

__all__ = ["CSV_CONTENT_TYPE", "EXPORT_FORMATS", "MetricsRoutes"]

#: Content type of the CSV exports.
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
#: What ``GET /export?format=`` accepts.
EXPORT_FORMATS = ("json", "csv", "series-csv", "prometheus")

R = TypeVar("R")
Route = Callable[["MetricsRoutes", HttpRequest], Awaitable[R]]


def _answers(route: Route[R]) -> Route[R]:
    """Turn the engine's input errors into 4xx answers instead of a 500.

    Selectors, statistics and dashboard bodies are checked by the engine itself, which
    raises ValueError (or a pydantic ValidationError); the message already says what to
    fix, so it becomes the answer.
    """

    @functools.wraps(route)
    async def handler(self: MetricsRoutes, request: HttpRequest) -> R:
        try:
            return await route(self, request)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise HttpError(400, f"invalid dashboard: {where}: {first['msg']}") from e
        except (ValueError, MetricsError) as e:
            raise HttpError(400, str(e)) from e

    return handler


def _float(query: Mapping[str, str], name: str, default: float) -> float:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as e:
        raise HttpError(
            400, f"query parameter {name}={raw!r} is not a number; send seconds, e.g. {name}=60"
        ) from e


class MetricsRoutes:
    """The plugin's HTTP API: metrics, time series, forecasts, alerts and dashboards."""

    def __init__(
        self,
        engine: MetricsEngine,
        dashboards: DashboardBook,
        exposition: Exposition | None = None,
    ) -> None:
        self.engine = engine
        self.exposition = exposition or prometheus_exposition(engine.registry)
        self.registry: MetricsRegistry = engine.registry
        self.store: SeriesStore = engine.store
        self.alerts: AlertManager = engine.alerts
        self.dashboards = dashboards

    def mount(self, http: HttpRoutes) -> None:
        """Register every route."""
        http.route("GET", "/metrics", self.prometheus)
        http.route("GET", "/metrics/{name}", self.show_metric)
        http.route("GET", "/export", self.export)
        http.route("GET", "/series", self.series)
        http.route("GET", "/series/aggregate", self.aggregate)
        http.route("GET", "/forecast", self.forecast)
        http.route("GET", "/alerts", self.list_alerts)
        http.route("GET", "/dashboards", self.list_dashboards)
        http.route("GET", "/dashboards/{name}", self.show_dashboard)
        http.route("PUT", "/dashboards/{name}", self.save_dashboard)
        http.route("DELETE", "/dashboards/{name}", self.delete_dashboard)

    async def prometheus(self, request: HttpRequest) -> HttpResponse:
        """Prometheus text exposition of every metric."""
        content_type, body = self.exposition()
        return HttpResponse(body, content_type=content_type)

    async def show_metric(self, request: HttpRequest) -> dict[str, Any]:
        """One metric, as in the JSON export; 404 when no metric has that name."""
        name = request.params["name"]
        metric = self.registry.get(name)
        if metric is None:
            raise HttpError(
                404,
                f"no metric named {name!r}; GET /v1/plugins/metrics/export lists them "
                f"(orrery metrics ls)",
            )
        return metric_json(metric)

    @_answers
    async def export(self, request: HttpRequest) -> Any:
        """``?format=json`` (default), ``csv``, ``prometheus`` or ``series-csv``."""
        fmt = request.query.get("format", "json")
        if fmt == "json":
            return export_json(self.registry)
        if fmt == "csv":
            return HttpResponse(export_csv(self.registry), content_type=CSV_CONTENT_TYPE)
        if fmt == "prometheus":
            return await self.prometheus(request)
        if fmt == "series-csv":
            keys = self.store.keys(request.query.get("selector") or None)
            body = export_series_csv(self.store, keys, *self._range(request))
            return HttpResponse(body, content_type=CSV_CONTENT_TYPE)
        raise HttpError(
            400, f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}"
        )

    def _range(self, request: HttpRequest) -> tuple[float, float]:
        return (
            _float(request.query, "start", -math.inf),
            _float(request.query, "end", math.inf),
        )

    def _keys(self, request: HttpRequest) -> list[SeriesKey]:
        return self.store.keys(
            request.query.get("selector") or None, request.query.get("stat") or None
        )

    @_answers
    async def series(self, request: HttpRequest) -> dict[str, Any]:
        """Points of the series matching ``?selector=&stat=&start=&end=&resolution=``."""
        start, end = self._range(request)
        resolution = (
            _float(request.query, "resolution", 0.0) if "resolution" in request.query else None
        )
        return {
            "series": [
                {
                    "metric": key.metric,
                    "labels": key.labels_dict(),
                    "stat": key.stat,
                    "points": [
                        p.as_dict()
                        for p in self.store.points(
                            key,
                            start,
                            end,
                            resolution=resolution,
                        )
                    ],
                }
                for key in self._keys(request)
            ]
        }

    @_answers
    async def aggregate(self, request: HttpRequest) -> dict[str, Any]:
        """count/sum/min/max/avg/percentiles of each matching series over a range."""
        start, end = self._range(request)
        return {
            "series": [
                {
                    "metric": key.metric,
                    "labels": key.labels_dict(),
                    "stat": key.stat,
                    **self.store.aggregate(key, start, end).as_dict(),
                }
                for key in self._keys(request)
            ]
        }

    @_answers
    async def forecast(self, request: HttpRequest) -> dict[str, Any]:
        """Holt forecast per series: ``?selector=&stat=&horizon=&threshold=``.

        Capacity planning: the value expected ``horizon`` seconds after the last sample
        and, with ``threshold``, the seconds until it is reached.
        """
        horizon = _float(request.query, "horizon", 3_600.0)
        threshold = _float(request.query, "threshold", math.nan)
        out = []
        for key in self._keys(request):
            model = HoltForecaster.fit((p.t, p.value) for p in self.store.points(key))
            out.append(
                {
                    "metric": key.metric,
                    "labels": key.labels_dict(),
                    "stat": key.stat,
                    "level": model.level,
                    "trend_per_s": model.trend,
                    "forecast": model.forecast(horizon),
                    "eta_seconds": None
                    if math.isnan(threshold)
                    else model.time_to_reach(threshold),
                }
            )
        return {"horizon": horizon, "series": out}

    async def list_alerts(self, request: HttpRequest) -> dict[str, Any]:
        """Pending and firing alerts, and the rules."""
        return {
            "alerts": self.alerts.alerts(),
            "rules": [rule.model_dump(by_alias=True) for rule in self.alerts.rules],
        }

    async def list_dashboards(self, request: HttpRequest) -> dict[str, Any]:
        """Names and titles of the dashboards."""
        return {
            "dashboards": [
                {"name": name, "title": self.dashboards.get(name).title or name}
                for name in self.dashboards.names()
            ]
        }

    async def show_dashboard(self, request: HttpRequest) -> dict[str, Any]:
        """A dashboard with its widgets' data, ready to draw; 404 when unknown."""
        name = request.params["name"]
        if name not in self.dashboards:
            raise HttpError(
                404,
                f"no dashboard named {name!r}; GET /v1/plugins/metrics/dashboards lists them, "
                f"PUT /v1/plugins/metrics/dashboards/{name} defines it",
            )
        return render_dashboard(self.dashboards.get(name), self.engine)

    @_answers
    async def save_dashboard(self, request: HttpRequest) -> dict[str, Any]:
        """Create or replace a dashboard from the JSON body (its name comes from the path)."""
        body = await request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "a dashboard must be a JSON object with 'widgets'")
        dashboard = Dashboard.model_validate({**body, "name": request.params["name"]})
        await self.dashboards.save(dashboard)
        return dashboard.model_dump()

    async def delete_dashboard(self, request: HttpRequest) -> dict[str, Any]:
        """Remove a dashboard; 404 when there is none by that name."""
        name = request.params["name"]
        if name not in self.dashboards:
            raise HttpError(404, f"no dashboard named {name!r} to delete")
        return {"deleted": await self.dashboards.delete(name)}
