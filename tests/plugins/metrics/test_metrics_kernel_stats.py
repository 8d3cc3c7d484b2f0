"""Kernel figures (the kernel's ``orrery.kernel`` service) sampled into metrics."""

from __future__ import annotations

import math
from typing import Any

import pytest
from orrery.kernel._introspection import (
    HTTP_BUCKETS,
    KERNEL_SERVICE,
    KERNEL_SERVICE_OWNER,
    HttpStats,
    provide_introspection,
)
from orrery_metrics import (
    METRICS,
    METRICS_EXPOSITION,
    KernelSampler,
    MetricsPlugin,
    MetricsRegistry,
)
from orrery_metrics._instrument import MAX_PREFIXES, OTHER_PREFIX
from prometheus_client.parser import text_string_to_metric_families

ROUTE = ("/v1/plugins/{name}", "GET")


def snapshot(
    *,
    depth: dict[str, int] | None = None,
    states: dict[str, int] | None = None,
    restarts: dict[str, int] | None = None,
    http: HttpStats | None = None,
    traffic: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """A snapshot shaped like KernelIntrospection.snapshot()."""
    return {
        "bus": {"queue_depth": depth or {}, "traffic": traffic or {}},
        "plugins": {"by_state": states or {}},
        "sandbox_restarts": restarts or {},
        "http": (http or HttpStats()).snapshot(),
    }


def test_gauges_follow_the_kernel_and_vanished_owners_disappear() -> None:
    registry = MetricsRegistry()
    sampler = KernelSampler(registry)
    sampler.sample(snapshot(depth={"a": 3, "b": 0}, states={"active": 2, "failed": 1}))
    assert sampler.queue_depth.labels("a").value == 3
    sampler.sample(snapshot(depth={"b": 5}, states={"active": 3}))
    assert [values for values, _ in sampler.queue_depth.children()] == [("b",)]
    assert sampler.plugins.labels("active").value == 3
    assert sampler.plugins.labels("failed").value == 0  # kept, at 0, so graphs show the drop


def test_counters_mirror_kernel_totals_and_survive_a_reset() -> None:
    registry = MetricsRegistry()
    sampler = KernelSampler(registry)
    sampler.sample(snapshot(restarts={"worker": 2}))
    sampler.sample(snapshot(restarts={"worker": 5}))
    child = sampler.restarts.labels("worker")
    assert child.value == 5
    # The source restarted from zero and has counted 1 since: as with a Prometheus
    # counter reset, that 1 is an increase, on top of the 5 already counted.
    sampler.sample(snapshot(restarts={"worker": 1}))
    assert child.value == 6
    sampler.sample(snapshot(restarts={"worker": 3}))
    assert child.value == 8


def test_bus_traffic_is_mirrored_per_prefix_with_prefixes_capped() -> None:
    registry = MetricsRegistry()
    sampler = KernelSampler(registry)
    counts = {"published": 4, "delivered": 7, "failed": 2, "deadlettered": 1}
    sampler.sample(snapshot(traffic={"orders": counts}))
    sampler.sample(snapshot(traffic={"orders": {**counts, "published": 6}}))
    assert sampler.traffic["published"].labels("orders").value == 6
    assert sampler.traffic["delivered"].labels("orders").value == 7
    assert sampler.traffic["failed"].labels("orders").value == 2
    assert sampler.traffic["deadlettered"].labels("orders").value == 1
    many = {f"p{i}": {"published": 1} for i in range(MAX_PREFIXES + 10)}
    sampler.sample(snapshot(traffic=many))
    published = sampler.traffic["published"]
    assert len(published.children()) == MAX_PREFIXES + 1  # the rest under one label
    assert published.labels(OTHER_PREFIX).value == 11


def test_http_counts_and_latency_histogram_are_exact() -> None:
    registry = MetricsRegistry()
    sampler = KernelSampler(registry)
    http = HttpStats()
    for seconds in (0.001, 0.02, 0.02, 0.3):
        http.record("GET", ROUTE[0], 200, seconds)
    http.record("GET", ROUTE[0], 404, 12.0)
    sampler.sample(snapshot(http=http))
    sampler.sample(snapshot(http=http))  # nothing new: nothing added twice
    http.record("GET", ROUTE[0], 200, 0.004)
    sampler.sample(snapshot(http=http))

    requests = sampler.http_requests
    assert requests.labels(*ROUTE, "200").value == 5
    assert requests.labels(*ROUTE, "404").value == 1
    histogram = sampler.http_seconds
    assert histogram is not None and histogram.buckets == HTTP_BUCKETS
    child = histogram.labels(*ROUTE)
    buckets, total = child.cumulative()
    assert dict(buckets)[0.005] == 2 and dict(buckets)[0.025] == 4 and dict(buckets)[0.5] == 5
    assert dict(buckets)[10.0] == 5 and dict(buckets)[math.inf] == 6
    assert total == pytest.approx(0.001 + 0.02 + 0.02 + 0.3 + 12.0 + 0.004)
    stats = child.stats()
    assert stats.count == 6 and stats.max == pytest.approx(12.0, rel=0.02)
    # Percentiles are as coarse as the buckets: the median lies in (0.01, 0.025].
    assert stats.percentiles["p50"] == pytest.approx(0.025, rel=0.02)


def test_a_new_sampler_over_restored_values_does_not_count_twice() -> None:
    # After a hot reload the new instance restores the counters and samples the same
    # kernel totals again: they must not be added a second time.
    registry = MetricsRegistry()
    http = HttpStats()
    http.record("GET", ROUTE[0], 200, 0.02)
    KernelSampler(registry).sample(snapshot(http=http, restarts={"w": 2}))
    again = KernelSampler(registry)
    again.sample(snapshot(http=http, restarts={"w": 2}))
    assert again.http_requests.labels(*ROUTE, "200").value == 1
    assert again.restarts.labels("w").value == 2
    assert again.http_seconds is not None
    assert again.http_seconds.labels(*ROUTE).count == 1


async def test_the_plugin_samples_the_kernel_service(orrery_kernel: Any) -> None:
    config = {"scrape_interval": 3600, "evaluation_interval": 3600}
    async with orrery_kernel(MetricsPlugin, config=config) as k:
        expose = k.service(METRICS_EXPOSITION)
        registry = k.service(METRICS)
        services = k.kernel.services
        introspection = provide_introspection(k.kernel)  # the kernel provides it at start
        assert services.get(KERNEL_SERVICE) is introspection
        # Without the service the plugin still scrapes, just without fresh kernel figures.
        assert services.withdraw(KERNEL_SERVICE, None)  # the kernel set it, no plugin
        introspection.http.record("GET", "/v1/status", 200, 0.01)
        expose()
        assert not registry.get("orrery_http_requests_total").children()
        services.set(KERNEL_SERVICE_OWNER, KERNEL_SERVICE, introspection)
        _, body = expose()  # a scrape samples the kernel first
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples
        }
    assert samples[("orrery_plugins", (("state", "active"),))] == 1
    assert samples[("orrery_bus_queue_depth", (("owner", "metrics"),))] == 0
    labels = (("method", "GET"), ("route", "/v1/status"), ("status", "200"))
    assert samples[("orrery_http_requests_total", labels)] == 1


async def test_bus_traffic_is_read_from_the_kernel_at_scrape_time(orrery_kernel: Any) -> None:
    config = {"scrape_interval": 3600, "evaluation_interval": 3600}
    async with orrery_kernel(MetricsPlugin, config=config) as k:
        provide_introspection(k.kernel)
        bus = k.kernel.bus
        # The plugin does not subscribe to application topics: publishing does not
        # reach it at all; the kernel's counters are read when scraped.
        assert not [s for s in bus.subscriptions if s.pattern == ">"]
        bus.subscribe("orders.*", lambda e: None)
        for i in range(3):
            await bus.publish("orders.created", {"id": i})
        _, body = k.service(METRICS_EXPOSITION)()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples
        }
    assert samples[("orrery_bus_events_total", (("prefix", "orders"),))] == 3
    assert samples[("orrery_bus_delivered_total", (("prefix", "orders"),))] == 3


async def test_reloads_are_counted_per_plugin(orrery_kernel: Any, orrery_plugins_dir: Any) -> None:
    path = orrery_plugins_dir(
        "metrics_plugin.py",
        """
        import orrery_metrics

        class Metrics(orrery_metrics.MetricsPlugin):
            name = "metrics"
        """,
    )
    orrery_plugins_dir("other.py", "from orrery.sdk import Plugin\n\nclass Other(Plugin):\n"
                       "    name = 'other'\n")  # fmt: skip
    config = {"plugins": {"metrics": {"scrape_interval": 3600, "evaluation_interval": 3600}}}
    async with orrery_kernel(plugins_dirs=[path.parent], config=config) as k:
        announced = k.expect("orrery.plugin.reloaded")
        await k.reload("other")
        await announced.wait()
        # The metrics plugin's synchronous subscriber saw the announcement when the
        # bus delivered it, and the harness's waiter subscribed later: it is counted.
        assert await k.kernel.quiesce(10)
        reloads = k.service(METRICS).get("orrery_plugin_reloads_total")
        assert reloads.labels("other").value == 1


def test_latency_histogram_survives_a_reset_of_the_kernel_table() -> None:
    registry = MetricsRegistry()
    sampler = KernelSampler(registry)
    before = HttpStats()
    for _ in range(3):
        before.record("GET", ROUTE[0], 200, 0.02)
    sampler.sample(snapshot(http=before))
    after = HttpStats()  # e.g. the daemon's app was rebuilt: totals start again
    after.record("GET", ROUTE[0], 200, 0.2)
    sampler.sample(snapshot(http=after))
    assert sampler.http_seconds is not None
    buckets, total = sampler.http_seconds.labels(*ROUTE).cumulative()
    assert dict(buckets)[0.025] == 3 and dict(buckets)[math.inf] == 4
    assert total == pytest.approx(0.26)
    assert sampler.http_requests.labels(*ROUTE, "200").value == 4
