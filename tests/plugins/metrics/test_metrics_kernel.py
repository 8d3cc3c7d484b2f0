"""The metrics plugin in a real in-process kernel (orrery.sdk.testing harness)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import pytest
from orrery.sdk import Plugin
from orrery_metrics import METRICS, METRICS_EXPOSITION, MetricsPlugin, MetricsRegistry

FAST = {"scrape_interval": 0.02, "evaluation_interval": 0.02, "retention": 60}


async def test_starts_and_provides_its_services(orrery_kernel: Any) -> None:
    async with orrery_kernel(MetricsPlugin, config=FAST) as k:
        k.assert_state("metrics", "active")
        registry = k.service(METRICS)
        assert isinstance(registry, MetricsRegistry)
        registry.counter("jobs_total").inc(2)
        content_type, body = k.service(METRICS_EXPOSITION)()
        assert content_type.startswith("text/plain")
        assert b"jobs_total 2.0" in body


async def test_alerts_reach_the_bus(orrery_kernel: Any) -> None:
    rules = [{"name": "Deep", "expr": "queue_depth", "threshold": 10}]
    async with orrery_kernel(MetricsPlugin, config={**FAST, "alerts": rules}) as k:
        firing = k.expect("alert.firing")
        k.service(METRICS).gauge("queue_depth").set(50)
        [event] = await firing.wait()
        assert event.data["alert"] == "Deep" and event.data["value"] == 50
        resolved = k.expect("alert.resolved")
        k.service(METRICS).gauge("queue_depth").set(0)
        [event] = await resolved.wait()
        assert event.key == event.data["fingerprint"]


async def test_kernel_events_become_metrics(orrery_kernel: Any) -> None:
    # An alert on the instrumentation itself says when our handler has seen the ping,
    # without polling. Delivery is in publish order, so the kernel's earlier
    # "metrics is active" announcement has been counted by then too.
    rules = [
        {"name": "Pinged", "expr": 'orrery_events_total{prefix="orrery.test.ping"}', "threshold": 0}
    ]
    async with orrery_kernel(MetricsPlugin, config={**FAST, "alerts": rules}) as k:
        firing = k.expect("alert.firing")
        await k.publish("orrery.test.ping", {"duration_s": 0.25})
        [event] = await firing.wait()
        assert event.data["labels"]["prefix"] == "orrery.test.ping"
        registry = k.service(METRICS)
        state = registry.gauge("orrery_plugin_state", "", ("plugin", "state"))
        assert state.labels("metrics", "active").value == 1
        durations = registry.histogram("orrery_event_duration_seconds", "", ("prefix",))
        assert durations.labels("orrery.test.ping").stats().max == 0.25


RELOADABLE = """
import orrery_metrics

class Metrics(orrery_metrics.MetricsPlugin):
    name = "metrics"
"""


async def test_hot_reload_keeps_values_and_alert_states(
    orrery_kernel: Any, orrery_plugins_dir: Any
) -> None:
    path = orrery_plugins_dir("metrics_plugin.py", RELOADABLE)
    rules = [{"name": "Deep", "expr": "queue_depth", "threshold": 10}]
    config = {"plugins": {"metrics": {**FAST, "alerts": rules}}}
    async with orrery_kernel(plugins_dirs=[path.parent], config=config) as k:
        k.service(METRICS).counter("jobs_total").inc(5)
        firing = k.expect("alert.firing")
        k.service(METRICS).gauge("queue_depth").set(50)
        await firing.wait()
        next_alert = k.expect("alert.>")
        await k.reload("metrics")
        k.assert_state("metrics", "active")
        registry = k.service(METRICS)
        assert registry.counter("jobs_total").value == 5
        registry.gauge("queue_depth").set(0)
        # The new instance knew the alert was firing: it resolves it, and never
        # announced it a second time.
        [event] = await next_alert.wait()
        assert event.type == "alert.resolved" and event.data["alert"] == "Deep"


async def test_metric_objects_held_across_a_reload_keep_counting(
    orrery_kernel: Any, orrery_plugins_dir: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A plugin declares its metrics once and keeps the objects; the metrics plugin is
    # reloaded under it. Every later update must reach what the new version exposes.
    path = orrery_plugins_dir("metrics_plugin.py", RELOADABLE)
    config = {"plugins": {"metrics": FAST}}
    async with orrery_kernel(plugins_dirs=[path.parent], config=config) as k:
        held = k.service(METRICS).counter("held_total")
        child = k.service(METRICS).gauge("held_depth", labels=("queue",)).labels("a")
        held.inc(2)
        child.set(3)
        await k.reload("metrics")
        k.assert_state("metrics", "active")
        held.inc(5)
        child.set(9)
        registry = k.service(METRICS)
        assert registry.counter("held_total").value == 7
        assert registry.gauge("held_depth", labels=("queue",)).labels("a").value == 9
        _, body = k.service(METRICS_EXPOSITION)()
        assert b"held_total 7.0" in body
        assert b'held_depth{queue="a"} 9.0' in body
        # The live registry went through orrery_handover; the snapshot is plain data.
        assert not [r for r in caplog.records if "not JSON-able" in r.getMessage()]


async def test_routes_are_served_by_the_daemon(orrery_kernel: Any) -> None:
    async with orrery_kernel(MetricsPlugin, config=FAST) as k:
        k.service(METRICS).gauge("queue_depth").set(4)
        scraped = await k.http("GET", "/v1/plugins/metrics/metrics")
        assert scraped.status == 200
        assert scraped.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "queue_depth 4.0" in scraped.text
        widgets = [{"title": "Depth", "kind": "stat", "query": "queue_depth"}]
        put = await k.http("PUT", "/v1/plugins/metrics/dashboards/ops", {"widgets": widgets})
        assert put.status == 200, put.text
        shown = (await k.http("GET", "/v1/plugins/metrics/dashboards/ops")).json()
        assert shown["widgets"][0]["series"][0]["value"] == 4


def test_the_distribution_declares_the_entry_point() -> None:
    (entry,) = [e for e in entry_points(group="orrery.plugins") if e.name == "metrics"]
    assert entry.value == "orrery_metrics:MetricsPlugin"
    loaded = entry.load()
    # Compared by name: a kernel rescan elsewhere in the suite may have re-imported it.
    assert (loaded.__module__, loaded.__qualname__) == ("orrery_metrics._plugin", "MetricsPlugin")
    assert issubclass(loaded, Plugin)
