"""Prometheus exposition (read back with prometheus_client's parser), JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest
from orrery.sdk.testing import ManualClock
from orrery_metrics import (
    PROMETHEUS_CONTENT_TYPE,
    MetricsCollector,
    MetricsRegistry,
    SeriesKey,
    SeriesStore,
    export_csv,
    export_json,
    export_series_csv,
    prometheus_text,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture
def registry(clock: ManualClock) -> MetricsRegistry:
    registry = MetricsRegistry(clock=clock)
    requests = registry.counter("http_requests_total", "Requests served", ("route",))
    requests.labels("/a").inc(3)
    requests.labels("/b").inc()
    registry.gauge("queue_depth", "Jobs waiting").set(7)
    latency = registry.histogram(
        "latency_seconds", "Latency", ("route",), buckets=(0.1, 1.0)
    ).labels("/a")
    for v in (0.05, 0.5, 0.5, 2.0):
        latency.observe(v)
    size = registry.summary("payload_bytes", "Payload size")
    for v in (10.0, 20.0, 30.0):
        size.observe(v)
    return registry


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_prometheus_text_round_trips_through_the_official_parser(
    registry: MetricsRegistry,
) -> None:
    text = prometheus_text(registry)
    got = samples(text)
    assert got[("http_requests_total", (("route", "/a"),))] == 3
    assert got[("http_requests_total", (("route", "/b"),))] == 1
    assert got[("queue_depth", ())] == 7
    assert got[("latency_seconds_bucket", (("le", "0.1"), ("route", "/a")))] == 1
    assert got[("latency_seconds_bucket", (("le", "1.0"), ("route", "/a")))] == 3
    assert got[("latency_seconds_bucket", (("le", "+Inf"), ("route", "/a")))] == 4
    assert got[("latency_seconds_count", (("route", "/a"),))] == 4
    assert got[("latency_seconds_sum", (("route", "/a"),))] == 3.05
    assert got[("payload_bytes", (("quantile", "0.5"),))] == pytest.approx(20, rel=0.01)
    assert got[("payload_bytes_count", ())] == 3
    assert "# HELP http_requests_total Requests served" in text
    assert "# TYPE latency_seconds histogram" in text
    assert PROMETHEUS_CONTENT_TYPE.startswith("text/plain")


def test_collector_plugs_into_any_prometheus_registry(registry: MetricsRegistry) -> None:
    scrape = CollectorRegistry()
    scrape.register(MetricsCollector(registry))
    assert b"queue_depth 7.0" in generate_latest(scrape)


def test_json_export_is_json_and_complete(registry: MetricsRegistry) -> None:
    data = json.loads(json.dumps(export_json(registry)))
    by_name = {m["name"]: m for m in data["metrics"]}
    assert by_name["http_requests_total"]["type"] == "counter"
    assert by_name["http_requests_total"]["labels"] == ["route"]
    assert {s["labels"]["route"]: s["value"] for s in by_name["http_requests_total"]["series"]} == {
        "/a": 3,
        "/b": 1,
    }
    latency = by_name["latency_seconds"]["series"][0]
    assert latency["count"] == 4 and latency["min"] == 0.05 and latency["max"] == 2.0
    assert latency["buckets"] == {"0.1": 1, "1.0": 3, "+Inf": 4}
    assert set(latency) >= {"p50", "p90", "p95", "p99", "avg", "sum"}


def test_csv_export_has_one_row_per_statistic(registry: MetricsRegistry) -> None:
    rows = list(csv.DictReader(io.StringIO(export_csv(registry))))
    assert rows[0].keys() == {"metric", "type", "labels", "stat", "value"}
    assert {
        (r["metric"], r["labels"], r["stat"], r["value"])
        for r in rows
        if r["metric"] == "http_requests_total"
    } == {
        ("http_requests_total", "route=/a", "value", "3.0"),
        ("http_requests_total", "route=/b", "value", "1.0"),
    }
    assert ("latency_seconds", "le=+Inf", "4") in {
        (r["metric"], r["stat"], r["value"]) for r in rows
    }


def test_series_csv_export() -> None:
    store = SeriesStore()
    key = SeriesKey.of("m", {"a": "1"})
    store.record(100.0, [(key, 1.5)])
    store.record(110.0, [(key, 2.5)])
    rows = list(csv.reader(io.StringIO(export_series_csv(store))))
    assert rows[0] == ["timestamp", "metric", "labels", "stat", "value", "count", "min", "max"]
    assert rows[1:] == [
        ["100.0", "m", "a=1", "value", "1.5", "1", "1.5", "1.5"],
        ["110.0", "m", "a=1", "value", "2.5", "1", "2.5", "2.5"],
    ]
