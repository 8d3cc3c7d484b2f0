"""Dashboards: definitions (validated with pydantic) rendered to JSON for any front end.

A dashboard is a list of widgets, each a PromQL-style selector plus how to show it:

- ``stat``: the current value of each selected series;
- ``gauge``: the same, with a ``min``..``max`` range and thresholds;
- ``graph``: the time series over the last ``window`` seconds;
- ``table``: one row per series with every statistic.

Rendering produces plain data, so the web UI and the terminal (``orrery metrics dash``)
share it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from orrery.sdk import Store
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._export import child_data
from ._selector import Selector
from ._values import series_value
from .errors import UnknownDashboard

if TYPE_CHECKING:  # the engine's config holds dashboards: a runtime import would cycle
    from ._engine import MetricsEngine

__all__ = ["Dashboard", "DashboardBook", "Widget", "render_dashboard"]

WidgetKind = Literal["gauge", "graph", "stat", "table"]


class Widget(BaseModel):
    """One panel of a dashboard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Heading of the panel.
    title: str
    #: How it is drawn: stat, gauge, graph or table.
    kind: WidgetKind
    #: Series selector, e.g. ``'http_latency_seconds{route="/x"}'``.
    query: str
    #: Statistic shown: ``value``, ``rate``, ``count``, ``avg``, ``p99``...
    stat: str = "value"
    #: Seconds of history (graph range; rate and aggregation window).
    window: float = Field(default=3_600.0, gt=0)
    #: Shown after values, e.g. "ms".
    unit: str = ""
    #: Gauge range: its empty end...
    min: float = 0.0
    #: ...and its full end (no bar without it).
    max: float | None = None
    #: Values at which a gauge or stat changes colour, ascending.
    thresholds: list[float] = Field(default_factory=list)

    @field_validator("query")
    @classmethod
    def _check_query(cls, query: str) -> str:
        Selector.parse(query)
        return query


class Dashboard(BaseModel):
    """A named set of widgets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Identifier in URLs (``/dashboards/<name>``).
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    #: Heading (default: the name).
    title: str = ""
    #: Seconds between refreshes suggested to viewers.
    refresh: float = Field(default=15.0, gt=0)
    #: The panels, in display order.
    widgets: list[Widget] = Field(default_factory=list)


def _current(engine: MetricsEngine, widget: Widget, now: float) -> list[dict[str, Any]]:
    out = []
    for metric, values, child in engine.registry.select(widget.query):
        labels = metric.labels_dict(values)
        value = series_value(
            metric.name, labels, child, widget.stat,
            store=engine.store, window=widget.window, now=now,
        )  # fmt: skip
        out.append({"metric": metric.name, "labels": labels, "value": value})
    return out


def _graph(engine: MetricsEngine, widget: Widget, now: float) -> list[dict[str, Any]]:
    stat = "value" if widget.stat == "rate" else widget.stat
    return [
        {
            "metric": key.metric,
            "labels": key.labels_dict(),
            "points": [[p.t, p.value] for p in engine.store.points(key, now - widget.window, now)],
        }
        for key in engine.store.keys(widget.query, stat)
    ]


def _table(engine: MetricsEngine, widget: Widget) -> list[dict[str, Any]]:
    return [
        {"metric": metric.name, "labels": metric.labels_dict(values), **child_data(child)}
        for metric, values, child in engine.registry.select(widget.query)
    ]


def render_dashboard(
    dashboard: Dashboard, engine: MetricsEngine, now: float | None = None
) -> dict[str, Any]:
    """The dashboard with each widget's data filled in, as JSON-able data."""
    now = engine.clock.now() if now is None else now
    widgets = []
    for widget in dashboard.widgets:
        drawn: dict[str, Any] = widget.model_dump()
        if widget.kind == "graph":
            # The range drawn is the window, whatever points fall in it: a viewer
            # spreads them over [start, end] rather than showing the last few.
            drawn.update(start=now - widget.window, end=now, series=_graph(engine, widget, now))
        elif widget.kind == "table":
            drawn["series"] = _table(engine, widget)
        else:
            drawn["series"] = _current(engine, widget, now)
        widgets.append(drawn)
    return {
        "name": dashboard.name,
        "title": dashboard.title or dashboard.name,
        "refresh": dashboard.refresh,
        "time": now,
        "widgets": widgets,
    }


class DashboardBook:
    """Dashboards by name: from the config, plus those saved in the plugin's store."""

    PREFIX = "dashboards/"

    def __init__(self, store: Store | None = None, initial: Iterable[Dashboard] = ()) -> None:
        self._store = store
        self._dashboards = {d.name: d for d in initial}

    async def load(self) -> list[str]:
        """Read saved dashboards (they win over the config); returns keys that failed."""
        failed: list[str] = []
        if self._store is None:
            return failed
        async for key, value in self._store.scan(self.PREFIX):
            try:
                dashboard = Dashboard.model_validate(value)
            except ValidationError:
                failed.append(key)
                continue
            self._dashboards[dashboard.name] = dashboard
        return failed

    def __contains__(self, name: object) -> bool:
        return name in self._dashboards

    def names(self) -> list[str]:
        """Names, sorted."""
        return sorted(self._dashboards)

    def get(self, name: str) -> Dashboard:
        """The dashboard called ``name``; raises `UnknownDashboard`."""
        try:
            return self._dashboards[name]
        except KeyError:
            raise UnknownDashboard(name) from None

    async def save(self, dashboard: Dashboard) -> None:
        """Add or replace a dashboard, durably when there is a store."""
        if self._store is not None:
            await self._store.put(self.PREFIX + dashboard.name, dashboard.model_dump())
        self._dashboards[dashboard.name] = dashboard

    async def delete(self, name: str) -> bool:
        """Remove a dashboard; returns whether it existed."""
        if self._store is not None:
            await self._store.delete(self.PREFIX + name)
        return self._dashboards.pop(name, None) is not None
