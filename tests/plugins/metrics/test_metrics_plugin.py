"""MetricsPlugin wiring driven by a manual clock: service, routes, kernel events, alerts
on the bus, snapshot and restore.

A real kernel instantiates the plugin itself (with the wall clock), so these tests drive
the hooks with a small in-test Context to control time. test_metrics_kernel.py runs the
plugin in the real kernel (orrery.sdk.testing) for the same paths end to end.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from orrery.sdk import (
    Event,
    HttpError,
    HttpResponse,
    ServiceKey,
    ServiceNotFound,
    new_event_id,
    subject_matches,
)
from orrery_metrics import (
    METRICS,
    METRICS_ENGINE,
    METRICS_EXPOSITION,
    ManualClock,
    MetricsConfig,
    MetricsEngine,
    MetricsPlugin,
    MetricsRegistry,
)
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")


@dataclass
class _Subscription:
    pattern: str
    handler: Callable[[Event], Any]
    group: str | None = None
    durable: str | None = None
    active: bool = True

    def unsubscribe(self) -> None:
        self.active = False

    async def drain(self) -> None:
        self.active = False


@dataclass
class _Bus:
    published: list[Event] = field(default_factory=list)
    subscriptions: list[_Subscription] = field(default_factory=list)

    async def publish(
        self,
        topic: str,
        data: Any = None,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        source: str = "orrery://test/metrics",
    ) -> Event:
        """Publish as the plugin under test, or (``source=``) as someone else."""
        event = Event(
            id=new_event_id(),
            type=topic,
            source=source,
            time_ns=0,
            subject=key,
            data=data,
        )
        self.published.append(event)
        for sub in self.subscriptions:
            if sub.active and subject_matches(sub.pattern, topic):
                result = sub.handler(event)
                if asyncio.iscoroutine(result):
                    await result
        return event

    def subscribe(
        self,
        pattern: str,
        handler: Callable[[Event], Any],
        *,
        group: str | None = None,
        durable: str | None = None,
    ) -> _Subscription:
        sub = _Subscription(pattern, handler, group, durable)
        self.subscriptions.append(sub)
        return sub

    async def request(self, topic: str, data: Any = None, *, timeout: float = 5.0) -> Any:
        raise NotImplementedError


@dataclass
class _Services:
    provided: dict[str, Any] = field(default_factory=dict)

    def provide(self, key: ServiceKey[Any] | str, impl: Any) -> None:
        self.provided[key if isinstance(key, str) else key.name] = impl

    def get(self, key: ServiceKey[Any] | str) -> Any:
        name = key if isinstance(key, str) else key.name
        try:
            return self.provided[name]
        except KeyError:
            raise ServiceNotFound(name) from None


@dataclass
class _Http:
    routes: dict[tuple[str, str], Callable[[Any], Any]] = field(default_factory=dict)

    def route(self, method: str, path: str, handler: Callable[[Any], Any]) -> None:
        self.routes[(method, path)] = handler


@dataclass
class _Request:
    method: str = "GET"
    path: str = "/"
    params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    principal: str = "test"
    body: Any = None

    async def json(self) -> Any:
        return self.body


@dataclass
class FakeContext:
    """Just enough of orrery.sdk.Context for the metrics plugin's hooks."""

    config: Any
    name: str = "metrics"
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("test.metrics"))
    bus: _Bus = field(default_factory=_Bus)
    services: _Services = field(default_factory=_Services)
    http: _Http = field(default_factory=_Http)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    store: Any = None
    journal: Any = None

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> Awaitable[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.append(task)
        return task

    async def get(self, path: str, **query: str) -> Any:
        return await self.http.routes[("GET", path)](_Request(path=path, query=query))

    async def call(self, method: str, route: str, body: Any = None, **params: str) -> Any:
        request = _Request(method=method, path=route.format(**params), params=params, body=body)
        return await self.http.routes[(method, route)](request)


ALERT_RULES: list[dict[str, Any]] = [
    {"name": "Deep", "expr": "queue_depth", "threshold": 10, "for": 30}
]


Started = tuple[MetricsPlugin, FakeContext]


def engine_of(plugin: MetricsPlugin) -> MetricsEngine:
    assert plugin.engine is not None
    return plugin.engine


@pytest.fixture
async def started(clock: ManualClock) -> AsyncIterator[Started]:
    plugin = MetricsPlugin(clock=clock)
    # A long interval: the background loop runs once at start, the test drives the rest.
    ctx = FakeContext(
        MetricsConfig.model_validate(
            {
                "scrape_interval": 3600,
                "evaluation_interval": 3600,
                "retention": 7200,
                "alerts": ALERT_RULES,
            }
        )
    )
    await plugin.orrery_start(ctx)
    yield plugin, ctx
    await plugin.orrery_stop(ctx)
    for task in ctx.tasks:
        task.cancel()


async def test_start_provides_the_registry_and_routes(started: Started) -> None:
    plugin, ctx = started
    registry = ctx.services.get(METRICS)
    assert isinstance(registry, MetricsRegistry)
    assert ctx.services.get(METRICS_ENGINE) is engine_of(plugin)
    content_type, body = ctx.services.get(METRICS_EXPOSITION)()
    assert content_type.startswith("text/plain") and isinstance(body, bytes)
    assert METRICS == ServiceKey("metrics")
    assert set(ctx.http.routes) == {
        ("GET", "/metrics"),
        ("GET", "/metrics/{name}"),
        ("GET", "/export"),
        ("GET", "/series"),
        ("GET", "/series/aggregate"),
        ("GET", "/forecast"),
        ("GET", "/alerts"),
        ("GET", "/dashboards"),
        ("GET", "/dashboards/{name}"),
        ("PUT", "/dashboards/{name}"),
        ("DELETE", "/dashboards/{name}"),
    }
    # One synchronous subscription, to kernel events only: bus traffic of every topic
    # is counted by the kernel and read at scrape time.
    assert [s.pattern for s in ctx.bus.subscriptions] == ["orrery.>"]


async def test_other_plugins_metrics_show_up_on_the_prometheus_route(started: Started) -> None:
    _, ctx = started
    registry = ctx.services.get(METRICS)
    registry.counter("jobs_total", "Jobs", ("queue",)).labels("default").inc(4)
    answer = await ctx.get("/metrics")
    assert isinstance(answer, HttpResponse)
    assert answer.content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert isinstance(answer.body, bytes)
    text = answer.body.decode()
    values = {
        (s.name, tuple(s.labels.values())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("jobs_total", ("default",))] == 4


async def test_alerts_are_published_once_and_resolved(started: Started, clock: ManualClock) -> None:
    plugin, ctx = started
    depth = ctx.services.get(METRICS).gauge("queue_depth")
    depth.set(50)
    now = clock()
    for step in range(0, 61, 15):  # evaluate every 15 s for a minute
        await plugin.evaluate_once(ctx, now + step)
    alerts = [e for e in ctx.bus.published if e.topic.startswith("alert.")]
    assert [e.topic for e in alerts] == ["alert.firing"]
    assert alerts[0].data["alert"] == "Deep" and alerts[0].key == alerts[0].data["fingerprint"]
    assert (await ctx.get("/alerts"))["alerts"][0]["state"] == "firing"
    depth.set(0)
    await plugin.evaluate_once(ctx, now + 75)
    alerts = [e for e in ctx.bus.published if e.topic.startswith("alert.")]
    assert [e.topic for e in alerts] == ["alert.firing", "alert.resolved"]


async def test_kernel_events_become_metrics(started: Started) -> None:
    _, ctx = started
    kernel = functools.partial(ctx.bus.publish, source="orrery://test/kernel")
    await kernel("orrery.plugin.starting", {"name": "scheduler"})
    await kernel("orrery.plugin.active", {"name": "scheduler", "state": "active"})
    # A reload is announced with the state the plugin is in afterwards.
    await kernel("orrery.plugin.reloaded", {"name": "scheduler", "state": "active"})
    await kernel("orrery.http.request", {"duration_s": 0.02, "route": "/v1/plugins"})
    await kernel("orders.created", {"id": 1})  # not a kernel topic: not seen here
    registry: MetricsRegistry = ctx.services.get(METRICS)
    events = registry.get("orrery_events_total")
    assert events is not None
    assert {values: child.value for values, child in events.children()} == {
        ("orrery.plugin.starting",): 1,
        ("orrery.plugin.active",): 1,
        ("orrery.plugin.reloaded",): 1,
        ("orrery.http.request",): 1,
    }
    plugin_events = registry.get("orrery_plugin_events_total")
    assert plugin_events is not None
    assert {values: child.value for values, child in plugin_events.children()} == {
        ("starting",): 1,
        ("active",): 1,
        ("reloaded",): 1,
    }
    state = registry.get("orrery_plugin_state")
    assert state is not None
    assert {values: child.value for values, child in state.children()} == {
        ("scheduler", "starting"): 0,
        ("scheduler", "active"): 1,
    }
    durations = registry.get("orrery_event_duration_seconds")
    assert durations is not None
    assert durations.labels("orrery.http.request").stats().max == 0.02
    reloads = registry.get("orrery_plugin_reloads_total")
    assert reloads is not None and reloads.labels("scheduler").value == 1
    by_prefix = registry.get("orrery_bus_events_total")
    assert by_prefix is None or not by_prefix.children()  # the kernel counts those


async def test_series_and_export_routes(started: Started, clock: ManualClock) -> None:
    plugin, ctx = started
    gauge = ctx.services.get(METRICS).gauge("temperature", "", ("room",))
    for i in range(5):
        gauge.labels("lab").set(20 + i)
        engine_of(plugin).scrape(clock.advance(60))
    series = await ctx.get("/series", selector="temperature")
    (only,) = series["series"]
    assert only["labels"] == {"room": "lab"}
    assert [p["value"] for p in only["points"]] == [20, 21, 22, 23, 24]
    aggregate = await ctx.get("/series/aggregate", selector="temperature")
    assert aggregate["series"][0]["max"] == 24 and aggregate["series"][0]["count"] == 5
    forecast = await ctx.get("/forecast", selector="temperature", threshold="30", horizon="60")
    assert forecast["series"][0]["eta_seconds"] == pytest.approx(360, rel=0.2)
    csv = await ctx.get("/export", format="csv")
    assert csv.content_type.startswith("text/csv") and "temperature" in csv.body
    prometheus = await ctx.get("/export", format="prometheus")
    assert prometheus.content_type.startswith("text/plain; version=0.0.4")
    assert any(m["name"] == "temperature" for m in (await ctx.get("/export"))["metrics"])


async def test_snapshot_and_restore_carry_values_series_and_alerts(
    started: Started, clock: ManualClock
) -> None:
    old, ctx = started
    registry = ctx.services.get(METRICS)
    registry.counter("jobs_total", "", ("queue",)).labels("a").inc(7)
    registry.histogram("latency_seconds").observe(0.3)
    registry.summary("size_bytes").observe(512)
    registry.gauge("queue_depth").set(50)
    await old.evaluate_once(ctx, clock())
    await old.evaluate_once(ctx, clock.advance(3600))  # fires "Deep"
    state = await old.orrery_snapshot(ctx)
    await old.orrery_stop(ctx)

    new = MetricsPlugin(clock=clock)
    new_ctx = FakeContext(ctx.config)
    await new.orrery_restore(new_ctx, state)
    await new.orrery_start(new_ctx)
    try:
        restored = new_ctx.services.get(METRICS)
        assert restored.counter("jobs_total", "", ("queue",)).labels("a").value == 7
        assert restored.histogram("latency_seconds").stats().max == 0.3
        assert restored.summary("size_bytes").stats().count == 1
        assert len(engine_of(new).store) == len(engine_of(old).store)
        # Still firing after the reload, so not announced again.
        await new.evaluate_once(new_ctx, clock.advance(3600))
        assert not [e for e in new_ctx.bus.published if e.topic == "alert.firing"]
    finally:
        await new.orrery_stop(new_ctx)


async def test_health_reports_counts(started: Started) -> None:
    plugin, ctx = started
    health = await plugin.orrery_health(ctx)
    assert health["ok"] is True
    assert health["alerts_firing"] == 0 and health["last_tick"] is not None


async def test_stop_ends_the_evaluation_loop(clock: ManualClock) -> None:
    plugin = MetricsPlugin(clock=clock)
    ctx = FakeContext({"scrape_interval": 3600, "evaluation_interval": 3600, "retention": 7200})
    await plugin.orrery_start(ctx)
    (task,) = ctx.tasks
    await plugin.orrery_stop(ctx)
    assert task.done() and not task.cancelled()


async def test_instrumentation_can_be_turned_off(clock: ManualClock) -> None:
    plugin = MetricsPlugin(clock=clock)
    ctx = FakeContext({"instrument_kernel": False})
    await plugin.orrery_start(ctx)
    try:
        assert ctx.bus.subscriptions == []
    finally:
        await plugin.orrery_stop(ctx)


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
    assert MetricsPlugin.Config is MetricsConfig
    assert MetricsPlugin.name == "metrics"


async def test_dashboards_through_the_routes(started: Started) -> None:
    _, ctx = started
    ctx.services.get(METRICS).gauge("queue_depth").set(3)
    widgets = [{"title": "Depth", "kind": "stat", "query": "queue_depth"}]
    saved = await ctx.call("PUT", "/dashboards/{name}", {"widgets": widgets}, name="ops")
    assert saved["name"] == "ops"
    assert (await ctx.get("/dashboards"))["dashboards"] == [{"name": "ops", "title": "ops"}]
    rendered = await ctx.call("GET", "/dashboards/{name}", name="ops")
    assert rendered["widgets"][0]["series"][0]["value"] == 3
    assert (await ctx.call("DELETE", "/dashboards/{name}", name="ops")) == {"deleted": True}


async def test_bad_query_parameters_are_explained(started: Started) -> None:
    _, ctx = started
    with pytest.raises(HttpError, match="not a number") as bad_number:
        await ctx.get("/series", start="yesterday")
    with pytest.raises(HttpError, match="unknown export format") as bad_format:
        await ctx.get("/export", format="xml")
    with pytest.raises(HttpError, match="invalid selector") as bad_selector:
        await ctx.get("/series", selector="up{")
    with pytest.raises(HttpError, match="widgets") as bad_body:
        await ctx.call("PUT", "/dashboards/{name}", {"widgets": [{"kind": "pie"}]}, name="x")
    assert {e.value.status for e in (bad_number, bad_format, bad_selector, bad_body)} == {400}


async def test_unknown_dashboards_and_metrics_are_404(started: Started) -> None:
    _, ctx = started
    for method in ("GET", "DELETE"):
        with pytest.raises(HttpError, match="no dashboard named 'ghost'") as missing:
            await ctx.call(method, "/dashboards/{name}", name="ghost")
        assert missing.value.status == 404
    with pytest.raises(HttpError, match="no metric named 'ghost'") as unknown:
        await ctx.call("GET", "/metrics/{name}", name="ghost")
    assert unknown.value.status == 404
    ctx.services.get(METRICS).counter("jobs_total", "Jobs", ("queue",)).labels("a").inc(2)
    shown = await ctx.call("GET", "/metrics/{name}", name="jobs_total")
    assert shown["type"] == "counter"
    assert shown["series"] == [{"labels": {"queue": "a"}, "value": 2}]


async def test_own_events_are_not_counted(started: Started) -> None:
    # Alerts the plugin publishes must not feed the counters an alert could watch.
    plugin, ctx = started
    ctx.services.get(METRICS).gauge("queue_depth").set(50)
    await plugin.evaluate_once(ctx, 0.0)
    await plugin.evaluate_once(ctx, 3600.0)  # "Deep" fires
    assert [e.topic for e in ctx.bus.published] == ["alert.firing"]
    counted = ctx.services.get(METRICS).get("orrery_bus_events_total")
    assert counted is None or not counted.children()


async def test_a_failing_count_never_raises_into_the_bus(
    started: Started, caplog: pytest.LogCaptureFixture
) -> None:
    # A raising ">" handler would have the event dead-lettered to
    # orrery.deadletter.<topic>, which ">" sees again, and so on: it logs once instead.
    _, ctx = started
    (sub,) = ctx.bus.subscriptions
    instruments = sub.handler.__self__  # type: ignore[attr-defined]

    class Broken:
        def labels(self, *values: str) -> Any:
            raise RuntimeError("broken counter")

    instruments.events = Broken()
    for _ in range(3):
        await ctx.bus.publish("orrery.plugin.active", {"name": "p"}, source="orrery://t/k")
    assert instruments.failures == 3
    assert len([r for r in caplog.records if "counting event" in r.getMessage()]) == 1
