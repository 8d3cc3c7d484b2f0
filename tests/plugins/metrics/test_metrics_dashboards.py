"""Dashboards: definitions, JSON rendering, saved definitions, terminal drawing."""

from __future__ import annotations

import pytest
from orrery.sdk.testing import ManualClock, MemoryStore
from orrery_metrics import (
    Dashboard,
    DashboardBook,
    MetricsEngine,
    UnknownDashboard,
    render_dashboard,
)
from orrery_metrics.cli import graph_line, live_dashboard, render_rich, sparkline
from pydantic import ValidationError
from rich.console import Console

OPS = Dashboard.model_validate(
    {
        "name": "ops",
        "title": "Operations",
        "widgets": [
            {"title": "Depth", "kind": "gauge", "query": "queue_depth", "max": 100,
             "thresholds": [50, 80]},
            {"title": "Depth over time", "kind": "graph", "query": "queue_depth"},
            {"title": "p99 latency", "kind": "stat", "query": "latency_seconds", "stat": "p99",
             "unit": "s"},
            {"title": "Latency", "kind": "table", "query": "latency_seconds"},
        ],
    }
)  # fmt: skip


@pytest.fixture
def engine(clock: ManualClock) -> MetricsEngine:
    engine = MetricsEngine(clock=clock)
    depth = engine.registry.gauge("queue_depth", "", ("queue",))
    latency = engine.registry.histogram("latency_seconds", "", ("route",))
    for i in range(5):
        depth.labels("jobs").set(10 * i)
        latency.labels("/x").observe(0.1 * (i + 1))
        engine.scrape(clock.advance(60))
    return engine


def test_render_fills_each_widget(engine: MetricsEngine) -> None:
    rendered = render_dashboard(OPS, engine)
    gauge, graph, stat, table = rendered["widgets"]
    assert rendered["title"] == "Operations"
    assert gauge["series"] == [{"metric": "queue_depth", "labels": {"queue": "jobs"}, "value": 40}]
    assert [v for _, v in graph["series"][0]["points"]] == [0, 10, 20, 30, 40]
    # Rank 0.99 * (5 - 1) = 3.96 falls on the fourth value, as in DDSketch.
    assert stat["series"][0]["value"] == pytest.approx(0.4, rel=0.01)
    assert table["series"][0]["count"] == 5 and table["series"][0]["labels"] == {"route": "/x"}


def test_widgets_are_validated() -> None:
    with pytest.raises(ValidationError, match="invalid selector"):
        Dashboard.model_validate(
            {"name": "x", "widgets": [{"title": "t", "kind": "stat", "query": "a{"}]}
        )
    with pytest.raises(ValidationError):
        Dashboard.model_validate(
            {"name": "x", "widgets": [{"title": "t", "kind": "pie", "query": "a"}]}
        )
    with pytest.raises(ValidationError):
        Dashboard(name="no spaces please")


async def test_book_saves_loads_and_deletes() -> None:
    store = MemoryStore()
    book = DashboardBook(store, [OPS])
    custom = Dashboard(name="mine", title="Mine")
    await book.save(custom)
    await store.put("dashboards/broken", {"name": 3})
    reloaded = DashboardBook(store, [OPS])
    assert await reloaded.load() == ["dashboards/broken"]
    assert reloaded.names() == ["mine", "ops"]
    assert reloaded.get("mine") == custom
    assert await reloaded.delete("mine")
    assert await store.get("dashboards/mine") is None
    with pytest.raises(UnknownDashboard, match="no dashboard named 'mine'"):
        reloaded.get("mine")


def test_terminal_drawing(engine: MetricsEngine) -> None:
    console = Console(record=True, width=160, color_system=None)
    console.print(render_rich(render_dashboard(OPS, engine)))
    text = console.export_text()
    for expected in ("Operations", "Depth", "queue=jobs", "40", "p99 latency", "route=/x"):
        assert expected in text


def test_live_dashboard_draws_once_without_waiting(engine: MetricsEngine) -> None:
    console = Console(record=True, width=160, color_system=None, force_terminal=False)
    live_dashboard(lambda: render_dashboard(OPS, engine), console=console, refreshes=1)
    assert "Operations" in console.export_text()


def test_sparkline_scales_to_the_range() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5]) == "▁▁"
    assert sparkline([]) == ""


def test_a_graph_draws_its_whole_window_not_the_last_points(
    engine: MetricsEngine, clock: ManualClock
) -> None:
    # 100 samples over the 10-minute window: a spike in the first minute must be drawn.
    gauge = engine.registry.gauge("load")
    for i in range(100):
        gauge.set(50.0 if i < 5 else 1.0)
        engine.scrape(clock.advance(6))
    graph = Dashboard.model_validate(
        {"name": "g", "widgets": [{"title": "Load", "kind": "graph", "query": "load",
                                   "window": 600}]}
    )  # fmt: skip
    [widget] = render_dashboard(graph, engine)["widgets"]
    assert widget["end"] - widget["start"] == 600
    [line] = widget["series"]
    assert len(line["points"]) == 100
    drawn = graph_line(line["points"], widget["start"], widget["end"], width=40)
    assert len(drawn) == 40
    assert drawn[0] == "█" and set(drawn[5:]) == {"▁"}
    console = Console(record=True, width=160, color_system=None)
    console.print(render_rich(render_dashboard(graph, engine)))
    assert "█" in console.export_text()  # the spike, 9 minutes old, is on screen


def test_a_graph_leaves_gaps_where_the_window_has_no_points() -> None:
    points = [[0.0, 1.0], [100.0, 2.0]]
    drawn = graph_line(points, 0.0, 100.0, width=10)
    assert drawn[0] == "▁" and drawn[-1] == "█" and drawn[1:-1] == " " * 8
