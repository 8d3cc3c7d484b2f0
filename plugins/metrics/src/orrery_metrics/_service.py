"""`MetricsService`: the facade other plugins get with ``ctx.services.get(METRICS_SERVICE)``.

Everything the remote API offers is a method here (the command table in `_api` only
parses parameters and calls these), so a plugin in the same kernel and a client on the
other side of HTTP or the bus see the same behaviour and the same errors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ._anomaly import Detector, Method, make_detector
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
from ._family import Counter, Gauge, Histogram, Summary
from ._forecast import HoltForecaster
from ._registry import MetricsRegistry
from ._timeseries import SeriesKey
from .errors import InvalidRequest, NoSeries, UnknownDashboard, UnknownMetric

__all__ = ["CSV_CONTENT_TYPE", "EXPORT_FORMATS", "MetricsService", "TextAnswer"]

#: What `MetricsService.export` accepts as ``fmt``.
EXPORT_FORMATS = ("json", "csv", "series-csv", "prometheus")
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"

#: ``(content_type, text)``: an answer that is a document rather than JSON.
TextAnswer = tuple[str, str]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class MetricsService:
    """Declare and update metrics, read their series, forecasts, alerts and dashboards,
    and check single values for anomalies."""

    def __init__(
        self,
        engine: MetricsEngine,
        dashboards: DashboardBook,
        exposition: Exposition | None = None,
    ) -> None:
        self.engine = engine
        self.dashboards = dashboards
        self.exposition = exposition or prometheus_exposition(engine.registry)

    # -- declaring -------------------------------------------------------------------

    @property
    def registry(self) -> MetricsRegistry:
        """The registry metrics are declared in (also the ``METRICS`` service)."""
        return self.engine.registry

    def counter(self, name: str, help: str = "", labels: Iterable[str] = ()) -> Counter:
        """Declare (or get the same) counter."""
        return self.registry.counter(name, help, labels)

    def gauge(self, name: str, help: str = "", labels: Iterable[str] = ()) -> Gauge:
        """Declare (or get the same) gauge."""
        return self.registry.gauge(name, help, labels)

    def histogram(
        self, name: str, help: str = "", labels: Iterable[str] = (), **kw: Any
    ) -> Histogram:
        """Declare (or get the same) histogram (``buckets=``)."""
        return self.registry.histogram(name, help, labels, **kw)

    def summary(self, name: str, help: str = "", labels: Iterable[str] = (), **kw: Any) -> Summary:
        """Declare (or get the same) summary (``max_age=``, ``age_buckets=``)."""
        return self.registry.summary(name, help, labels, **kw)

    # -- reading ---------------------------------------------------------------------

    def scrape(self) -> tuple[str, bytes]:
        """One Prometheus scrape: ``(content_type, body)``."""
        return self.exposition()

    def metric(self, name: str) -> dict[str, Any]:
        """One metric with every series' current data; raises `UnknownMetric`."""
        metric = self.registry.get(name)
        if metric is None:
            raise UnknownMetric(name)
        return metric_json(metric)

    def export(
        self,
        fmt: str = "json",
        *,
        selector: str | None = None,
        start: float = -math.inf,
        end: float = math.inf,
    ) -> dict[str, Any] | TextAnswer:
        """Every metric as JSON (a dict), or as text: ``csv``, ``prometheus``, or the
        time series of ``selector`` as ``series-csv``."""
        if fmt == "json":
            return export_json(self.registry)
        if fmt == "csv":
            return CSV_CONTENT_TYPE, export_csv(self.registry)
        if fmt == "prometheus":
            content_type, body = self.scrape()
            return content_type, body.decode("utf-8")
        if fmt == "series-csv":
            keys = self.engine.store.keys(selector)
            return CSV_CONTENT_TYPE, export_series_csv(self.engine.store, keys, start, end)
        raise InvalidRequest(
            "format", f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}"
        )

    def _keys(self, selector: str | None, stat: str | None) -> list[SeriesKey]:
        return self.engine.store.keys(selector or None, stat or None)

    @staticmethod
    def _head(key: SeriesKey) -> dict[str, Any]:
        return {"metric": key.metric, "labels": key.labels_dict(), "stat": key.stat}

    def series(
        self,
        selector: str | None = None,
        stat: str | None = None,
        start: float = -math.inf,
        end: float = math.inf,
        resolution: float | None = None,
    ) -> list[dict[str, Any]]:
        """Points of every stored series matching ``selector`` (and ``stat``)."""
        store = self.engine.store
        return [
            {
                **self._head(key),
                "points": [
                    p.as_dict() for p in store.points(key, start, end, resolution=resolution)
                ],
            }
            for key in self._keys(selector, stat)
        ]

    def aggregate(
        self,
        selector: str | None = None,
        stat: str | None = None,
        start: float = -math.inf,
        end: float = math.inf,
    ) -> list[dict[str, Any]]:
        """count/sum/min/max/avg/percentiles of each matching series over a range."""
        store = self.engine.store
        return [
            {**self._head(key), **store.aggregate(key, start, end).as_dict()}
            for key in self._keys(selector, stat)
        ]

    def forecast(
        self,
        selector: str | None = None,
        stat: str | None = None,
        horizon: float = 3_600.0,
        threshold: float | None = None,
    ) -> dict[str, Any]:
        """Holt forecast per series: the value ``horizon`` s after the last sample and,
        with ``threshold``, the seconds until it is reached (capacity planning)."""
        out = []
        for key in self._keys(selector, stat):
            model = HoltForecaster.fit((p.t, p.value) for p in self.engine.store.points(key))
            eta = None if threshold is None else model.time_to_reach(threshold)
            out.append(
                {
                    **self._head(key),
                    "level": model.level,
                    "trend_per_s": model.trend,
                    "forecast": model.forecast(horizon),
                    "eta_seconds": eta,
                }
            )
        return {"horizon": horizon, "series": out}

    def alerts(self) -> dict[str, Any]:
        """Pending and firing alerts, and the rules."""
        alerts = self.engine.alerts
        return {
            "alerts": alerts.alerts(),
            "rules": [rule.model_dump(by_alias=True) for rule in alerts.rules],
        }

    # -- anomaly checks --------------------------------------------------------------

    def check_anomaly(
        self,
        value: float,
        *,
        selector: str | None = None,
        stat: str = "value",
        history: Sequence[float] | None = None,
        method: Method = "zscore",
        sensitivity: float = 1.0,
        window: int = 60,
        alpha: float = 0.1,
        warmup: int = 10,
    ) -> dict[str, Any]:
        """Whether ``value`` would be an anomaly for a series, without recording it.

        The detector learns either ``history`` (values, oldest first) or, with
        ``selector``, the last ``window`` stored points of each matching series, then
        scores ``value``. ``anomaly`` is true when any series finds it unusual.
        """
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidRequest("value", f"value must be a finite number, got {value!r}")
        if window < 2 or warmup < 1:
            raise InvalidRequest(
                "window", f"window must be at least 2 and warmup at least 1, got {window}/{warmup}"
            )
        if (history is None) == (selector is None):
            raise InvalidRequest(
                "selector", "give either selector (a stored series) or history (a list of values)"
            )

        def detector() -> Detector:
            return make_detector(
                method, sensitivity=sensitivity, window=window, alpha=alpha, warmup=warmup
            )

        learned: list[tuple[dict[str, Any], list[float]]] = []
        if history is not None:
            values = [float(v) for v in history]
            learned.append(({"metric": None, "labels": {}, "stat": None}, values[-window:]))
        else:
            assert selector is not None
            keys = self._keys(selector, stat)
            if not keys:
                raise NoSeries(selector, stat)
            for key in keys:
                points = self.engine.store.points(key)[-window:]
                learned.append((self._head(key), [p.value for p in points]))
        results = []
        for head, values in learned:
            model = detector()
            for v in values:
                model.update(v)
            found = model.score(value)
            results.append(
                {
                    **head,
                    "anomaly": found.anomaly,
                    "score": _finite(found.score),
                    "expected": found.expected,
                    "samples": len(values),
                    "warming_up": found.expected is None,
                }
            )
        return {
            "value": value,
            "method": method,
            "threshold": detector().threshold,
            "anomaly": any(r["anomaly"] for r in results),
            "series": results,
        }

    # -- dashboards ------------------------------------------------------------------

    def dashboard_list(self) -> list[dict[str, str]]:
        """Names and titles of the dashboards."""
        book = self.dashboards
        return [{"name": n, "title": book.get(n).title or n} for n in book.names()]

    def dashboard(self, name: str, now: float | None = None) -> dict[str, Any]:
        """A dashboard with its widgets' data, ready to draw; raises `UnknownDashboard`."""
        return render_dashboard(self.dashboards.get(name), self.engine, now)

    async def save_dashboard(self, name: str, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace dashboard ``name`` (durably); raises `InvalidRequest`."""
        if not isinstance(definition, Mapping):
            raise InvalidRequest("body", "a dashboard must be a JSON object with 'widgets'")
        try:
            dashboard = Dashboard.model_validate({**definition, "name": name})
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise InvalidRequest(where, f"invalid dashboard: {where}: {first['msg']}") from e
        await self.dashboards.save(dashboard)
        return dashboard.model_dump()

    async def delete_dashboard(self, name: str) -> bool:
        """Remove dashboard ``name``; raises `UnknownDashboard` when there is none."""
        if name not in self.dashboards:
            raise UnknownDashboard(name)
        return await self.dashboards.delete(name)
