"""The metrics plugin in a real kernel (``orrery_kernel``) on a manual clock: services,
the command table over HTTP (the real daemon app, ``harness.http``) and over bus
requests, alerts on the bus, anomaly checks. test_metrics_kernel.py covers hot reload
and kernel events on the wall clock."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from orrery.kernel import Kernel
from orrery.sdk import Event
from orrery.sdk.testing import KernelHarness, ManualClock
from orrery_metrics import (
    METRICS,
    METRICS_ENGINE,
    METRICS_EXPOSITION,
    METRICS_SERVICE,
    KernelInstruments,
    MetricsConfig,
    MetricsEngine,
    MetricsPlugin,
    MetricsRegistry,
    MetricsService,
)
from prometheus_client.parser import text_string_to_metric_families

BASE = "/v1/plugins/metrics"
# Long intervals: after the evaluation at start, only the test moves things along.
SLOW = {"scrape_interval": 3600, "evaluation_interval": 3600, "retention": 7200}
ALERT_RULES: list[dict[str, Any]] = [
    {"name": "Deep", "expr": "queue_depth", "threshold": 10, "for": 30}
]


class Api:
    """The plugin's routes through the real daemon app (``harness.http``)."""

    def __init__(self, harness: KernelHarness) -> None:
        self.harness = harness

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        route, _, query = path.partition("?")
        params = dict(urllib.parse.parse_qsl(query)) if query else None
        result = await self.harness.http(method, BASE + route, json=body, query=params)
        is_json = result.headers.get("Content-Type", "").startswith("application/json")
        return result.status, result.json() if is_json else result.text

    async def get(self, path: str) -> Any:
        status, answer = await self.call("GET", path)
        assert status == 200, answer
        return answer


Started = Callable[..., Any]


@pytest.fixture
def started(orrery_kernel: Any, clock: ManualClock) -> Started:
    """``async with started(**config) as (kernel, api)``: the plugin in a real kernel
    (the ``orrery_kernel`` harness) on the manual clock, its routes served by the real
    daemon app."""

    @asynccontextmanager
    async def start(**config: Any) -> AsyncIterator[tuple[Kernel, Api]]:
        async with orrery_kernel(MetricsPlugin, config={**SLOW, **config}, clock=clock) as k:
            k.assert_state("metrics", "active")
            yield k.kernel, Api(k)

    return start


def engine_of(kernel: Kernel) -> MetricsEngine:
    engine: MetricsEngine = kernel.services.get(METRICS_ENGINE)
    return engine


async def settle(kernel: Kernel, clock: ManualClock) -> None:
    """Yield until the evaluation loop has ticked at the clock's time and waits again."""
    engine = engine_of(kernel)
    for _ in range(10_000):
        if engine.last_tick == clock.now() and clock.waiters:
            return
        await asyncio.sleep(0)  # a yield to the loop, not a timed wait
    raise AssertionError(f"the evaluation loop did not tick at {clock.now()}")


async def test_start_provides_the_services(started: Started) -> None:
    async with started() as (kernel, _):
        registry = kernel.services.get(METRICS)
        assert isinstance(registry, MetricsRegistry)
        service = kernel.services.get(METRICS_SERVICE)
        assert isinstance(service, MetricsService) and service.registry is registry
        assert kernel.services.get(METRICS_ENGINE).registry is registry
        content_type, body = kernel.services.get(METRICS_EXPOSITION)()
        assert content_type.startswith("text/plain") and isinstance(body, bytes)
        # What a hot reload hands over as the snapshot is plain JSON.
        json.dumps(engine_of(kernel).snapshot())


async def test_other_plugins_metrics_show_up_on_the_prometheus_route(started: Started) -> None:
    async with started() as (kernel, api):
        registry = kernel.services.get(METRICS)
        registry.counter("jobs_total", "Jobs", ("queue",)).labels("default").inc(4)
        result = await api.harness.http("GET", f"{BASE}/metrics")
        assert result.status == 200
        assert result.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = result.text
        values = {
            (s.name, tuple(s.labels.values())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert values[("jobs_total", ("default",))] == 4


async def test_alerts_follow_the_clock_and_are_published_once(
    started: Started, clock: ManualClock
) -> None:
    async with started(scrape_interval=15, evaluation_interval=15, alerts=ALERT_RULES) as (
        kernel,
        api,
    ):
        alerts: list[Event] = []
        kernel.bus.subscribe("alert.>", alerts.append)
        resolved = asyncio.get_running_loop().create_future()
        kernel.bus.subscribe("alert.resolved", lambda e: resolved.set_result(e))
        depth = kernel.services.get(METRICS).gauge("queue_depth")
        await settle(kernel, clock)
        depth.set(50)
        for _ in range(6):  # pending at +15, firing from +45 on (for = 30 s)
            clock.advance(15)
            await settle(kernel, clock)
        firing = (await api.get("/alerts"))["alerts"]
        assert [a["state"] for a in firing] == ["firing"]
        depth.set(0)
        clock.advance(15)
        await asyncio.wait_for(resolved, 5)
        assert [e.type for e in alerts] == ["alert.firing", "alert.resolved"]
        assert alerts[0].data["alert"] == "Deep" and alerts[0].key == alerts[0].data["fingerprint"]
        assert alerts[0].data["fired_at"] == alerts[0].data["active_since"] + 30


async def test_series_aggregate_forecast_and_export(started: Started, clock: ManualClock) -> None:
    async with started() as (kernel, api):
        gauge = kernel.services.get(METRICS).gauge("temperature", "", ("room",))
        for i in range(5):
            gauge.labels("lab").set(20 + i)
            engine_of(kernel).scrape(clock.advance(60))
        (only,) = (await api.get("/series?selector=temperature"))["series"]
        assert only["labels"] == {"room": "lab"}
        assert [p["value"] for p in only["points"]] == [20, 21, 22, 23, 24]
        aggregate = await api.get("/series/aggregate?selector=temperature")
        assert aggregate["series"][0]["max"] == 24 and aggregate["series"][0]["count"] == 5
        forecast = await api.get("/forecast?selector=temperature&threshold=30&horizon=60")
        assert forecast["series"][0]["eta_seconds"] == pytest.approx(360, rel=0.2)
        csv = await api.get("/export?format=csv")
        assert "temperature" in csv
        assert any(m["name"] == "temperature" for m in (await api.get("/export"))["metrics"])
        # The same commands answer bus requests.
        over_bus = await kernel.bus.request("metrics.series", {"selector": "temperature"})
        assert over_bus["series"][0]["points"] == only["points"]
        text = await kernel.bus.request("metrics.export", {"format": "prometheus"})
        assert text["content_type"].startswith("text/plain") and "temperature" in text["text"]


async def test_a_single_value_is_checked_for_anomaly(started: Started, clock: ManualClock) -> None:
    async with started() as (kernel, api):
        gauge = kernel.services.get(METRICS).gauge("latency_ms")
        for i in range(30):
            gauge.set(100.0 + (i % 3))
            engine_of(kernel).scrape(clock.advance(15))
        service: MetricsService = kernel.services.get(METRICS_SERVICE)
        odd = service.check_anomaly(400.0, selector="latency_ms")
        assert odd["anomaly"] is True
        assert odd["series"][0]["expected"] == pytest.approx(101, abs=1)
        usual = service.check_anomaly(101.0, selector="latency_ms")
        assert usual["anomaly"] is False and usual["series"][0]["samples"] == 30
        # Checking learns nothing: the series' own detector state is untouched.
        assert service.check_anomaly(400.0, selector="latency_ms") == odd
        status, answer = await api.call(
            "POST", "/anomaly", {"value": 400, "selector": "latency_ms"}
        )
        assert status == 200 and answer["anomaly"] is True
        got = await api.get("/anomaly?value=101&selector=latency_ms&method=mad")
        assert got["anomaly"] is False and got["method"] == "mad"
        history = await api.get("/anomaly?value=9&history=1,2,1,2,1,2,1,2,1,2,1,2")
        assert history["anomaly"] is True and history["series"][0]["samples"] == 12
        reply = await kernel.bus.request("metrics.anomaly", {"value": 9, "history": [1, 2] * 6})
        assert reply["anomaly"] is True
        bad_checks = (
            "/anomaly?selector=latency_ms",
            "/anomaly?value=x&selector=latency_ms",
            "/anomaly?value=3",
            "/anomaly?value=3&history=1,b",
            "/anomaly?value=3&history=1,2&window=0",
            "/anomaly?value=3&history=1&method=magic",
        )
        for bad in bad_checks:
            status, answer = await api.call("GET", bad)
            assert status == 400, (bad, answer)
        status, answer = await api.call("GET", "/anomaly?value=3&selector=ghost")
        assert status == 404 and "no stored series matches" in answer["error"]


async def test_dashboards_through_the_routes(started: Started) -> None:
    async with started() as (kernel, api):
        kernel.services.get(METRICS).gauge("queue_depth").set(3)
        widgets = [{"title": "Depth", "kind": "stat", "query": "queue_depth"}]
        status, saved = await api.call("PUT", "/dashboards/ops", {"widgets": widgets})
        assert status == 200 and saved["name"] == "ops"
        assert (await api.get("/dashboards"))["dashboards"] == [{"name": "ops", "title": "ops"}]
        rendered = await api.get("/dashboards/ops")
        assert rendered["widgets"][0]["series"][0]["value"] == 3
        assert (await api.call("DELETE", "/dashboards/ops")) == (200, {"deleted": True})


async def test_bad_input_is_400_and_unknown_names_404(started: Started) -> None:
    async with started() as (kernel, api):
        for path, message in (
            ("/series?start=yesterday", "not a number"),
            ("/export?format=xml", "unknown export format"),
            ("/series?selector=up%7B", "invalid selector"),
        ):
            status, answer = await api.call("GET", path)
            assert status == 400 and message in answer["error"], (path, answer)
        status, answer = await api.call("PUT", "/dashboards/x", {"widgets": [{"kind": "pie"}]})
        assert status == 400 and "widgets" in answer["error"]
        for method in ("GET", "DELETE"):
            status, answer = await api.call(method, "/dashboards/ghost")
            assert status == 404 and "no dashboard named 'ghost'" in answer["error"]
        status, answer = await api.call("GET", "/metrics/ghost")
        assert status == 404 and "no metric named 'ghost'" in answer["error"]
        kernel.services.get(METRICS).counter("jobs_total", "Jobs", ("queue",)).labels("a").inc(2)
        shown = await api.get("/metrics/jobs_total")
        assert shown["type"] == "counter"
        assert shown["series"] == [{"labels": {"queue": "a"}, "value": 2}]
        # Over the bus, errors are an answer, not a timeout.
        reply = await kernel.bus.request("metrics.metric", {"name": "ghost"})
        assert reply["error"]["type"] == "UnknownMetric"


async def test_bus_traffic_is_read_from_the_kernel_and_counting_can_be_off(
    started: Started, clock: ManualClock
) -> None:
    rules = [{"name": "Deep", "expr": "queue_depth", "threshold": 10}]
    async with started(scrape_interval=15, evaluation_interval=15, alerts=rules) as (kernel, _):
        alerts: list[Event] = []
        kernel.bus.subscribe("alert.>", alerts.append)
        await settle(kernel, clock)
        kernel.services.get(METRICS).gauge("queue_depth").set(50)
        clock.advance(15)
        await settle(kernel, clock)
        await kernel.bus.publish("orders.created", {"id": 1})
        assert [e.type for e in alerts] == ["alert.firing"]
        # The kernel counts every publish; the plugin reads the counts when it samples
        # (each evaluation and scrape), it does not receive the events.
        clock.advance(15)
        await settle(kernel, clock)
        counted = kernel.services.get(METRICS).get("orrery_bus_events_total")
        assert counted is not None
        prefixes = {values for values, _ in counted.children()}
        assert ("orders",) in prefixes and ("alert",) in prefixes
    async with started(instrument_kernel=False) as (kernel, _):
        await kernel.bus.publish("orders.created", {"id": 1})
        assert kernel.services.get(METRICS).get("orrery_bus_events_total") is None


async def test_stop_ends_the_evaluation_loop(started: Started, clock: ManualClock) -> None:
    async with started() as (kernel, _):
        await settle(kernel, clock)
        assert clock.waiters == 1
    assert clock.waiters == 0  # stopped at its wait, not left behind


def test_engine_ticks_only_when_due(clock: ManualClock) -> None:
    engine = MetricsEngine(MetricsConfig(scrape_interval=10, evaluation_interval=30), clock)
    engine.registry.gauge("g").set(1)
    engine.tick()
    assert engine.next_due() == clock() + 10
    clock.advance(5)
    engine.tick()
    assert len(engine.store.points(engine.store.keys()[0])) == 1
    clock.advance(5)
    engine.tick()
    assert len(engine.store.points(engine.store.keys()[0])) == 2


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="retention"):
        MetricsConfig(retention=5, scrape_interval=15)
    with pytest.raises(ValueError, match="unique"):
        MetricsConfig.model_validate({"alerts": [ALERT_RULES[0], ALERT_RULES[0]]})
    with pytest.raises(ValueError, match="extra"):
        MetricsConfig.model_validate({"scrape_intervall": 5})
    assert MetricsPlugin.Config is MetricsConfig
    assert MetricsPlugin.name == "metrics"


def test_a_failing_count_never_raises_into_the_bus(caplog: pytest.LogCaptureFixture) -> None:
    # A raising ">" handler would have the event dead-lettered to
    # orrery.deadletter.<topic>, which ">" sees again, and so on: it logs once instead.
    instruments = KernelInstruments(MetricsRegistry())

    class Broken:
        def labels(self, *values: str) -> Any:
            raise RuntimeError("broken counter")

    instruments.events = Broken()  # type: ignore[assignment]
    event = Event(id="1", type="orrery.plugin.active", source="orrery://t/kernel", time_ns=0,
                  subject=None, data={"name": "p"})  # fmt: skip
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            instruments.handle(event)
    assert instruments.failures == 3
    assert len([r for r in caplog.records if "counting event" in r.getMessage()]) == 1
