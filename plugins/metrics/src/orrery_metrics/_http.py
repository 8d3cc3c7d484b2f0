"""HTTP routes, mounted by the daemon under ``/v1/plugins/metrics/``.

Handlers return JSON-able data, except ``GET /metrics`` and CSV exports, which return
text (``str``) for the daemon to send as is.
"""

from __future__ import annotations

import math
from typing import Any

from orrery.sdk import HttpRequest, HttpRoutes

from ._alerts import AlertManager
from ._dashboards import Dashboard, DashboardBook, render_dashboard
from ._engine import MetricsEngine
from ._export import export_csv, export_json, export_series_csv, prometheus_text
from ._forecast import HoltForecaster
from ._registry import MetricsRegistry
from ._timeseries import SeriesKey, SeriesStore
from .errors import MetricsError

__all__ = ["MetricsRoutes"]


def _float(query: Any, name: str, default: float) -> float:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as e:
        raise MetricsError(f"query parameter {name}={raw!r} is not a number") from e


class MetricsRoutes:
    """The plugin's HTTP API: metrics, time series, forecasts, alerts and dashboards."""

    def __init__(self, engine: MetricsEngine, dashboards: DashboardBook) -> None:
        self.engine = engine
        self.registry: MetricsRegistry = engine.registry
        self.store: SeriesStore = engine.store
        self.alerts: AlertManager = engine.alerts
        self.dashboards = dashboards

    def mount(self, http: HttpRoutes) -> None:
        """Register every route."""
        http.route("GET", "/metrics", self.prometheus)
        http.route("GET", "/export", self.export)
        http.route("GET", "/series", self.series)
        http.route("GET", "/series/aggregate", self.aggregate)
        http.route("GET", "/forecast", self.forecast)
        http.route("GET", "/alerts", self.list_alerts)
        http.route("GET", "/dashboards", self.list_dashboards)
        http.route("GET", "/dashboards/{name}", self.show_dashboard)
        http.route("PUT", "/dashboards/{name}", self.save_dashboard)
        http.route("DELETE", "/dashboards/{name}", self.delete_dashboard)

    async def prometheus(self, request: HttpRequest) -> str:
        """Prometheus text exposition of every metric."""
        return prometheus_text(self.registry)

    async def export(self, request: HttpRequest) -> Any:
        """``?format=json`` (default), ``csv``, or ``series-csv`` (time series)."""
        fmt = request.query.get("format", "json")
        if fmt == "json":
            return export_json(self.registry)
        if fmt == "csv":
            return export_csv(self.registry)
        if fmt == "series-csv":
            keys = self.store.keys(request.query.get("selector") or None)
            return export_series_csv(self.store, keys, *self._range(request))
        raise MetricsError(f"unknown export format {fmt!r}; use json, csv or series-csv")

    def _range(self, request: HttpRequest) -> tuple[float, float]:
        return (
            _float(request.query, "start", -math.inf),
            _float(request.query, "end", math.inf),
        )

    def _keys(self, request: HttpRequest) -> list[SeriesKey]:
        return self.store.keys(
            request.query.get("selector") or None, request.query.get("stat") or None
        )

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
        """A dashboard with its widgets' data, ready to draw."""
        return render_dashboard(self.dashboards.get(request.params["name"]), self.engine)

    async def save_dashboard(self, request: HttpRequest) -> dict[str, Any]:
        """Create or replace a dashboard from the JSON body (its name comes from the path)."""
        body = await request.json()
        if not isinstance(body, dict):
            raise MetricsError("a dashboard must be a JSON object with 'widgets'")
        dashboard = Dashboard.model_validate({**body, "name": request.params["name"]})
        await self.dashboards.save(dashboard)
        return dashboard.model_dump()

    async def delete_dashboard(self, request: HttpRequest) -> dict[str, Any]:
        """Remove a dashboard."""
        return {"deleted": await self.dashboards.delete(request.params["name"])}
