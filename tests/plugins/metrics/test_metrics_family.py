"""Counters, gauges, histograms and summaries: values, labels, buckets, windows."""

from __future__ import annotations

import math
import random
import threading

import pytest
from orrery.sdk.testing import ManualClock
from orrery_metrics import (
    FOLD_AT,
    CardinalityError,
    InvalidLabels,
    InvalidMetricName,
    MetricsRegistry,
)


@pytest.fixture
def registry(clock: ManualClock) -> MetricsRegistry:
    return MetricsRegistry(clock=clock)


def test_counter_counts_and_refuses_to_go_down(registry: MetricsRegistry) -> None:
    requests = registry.counter("requests_total", "Requests")
    requests.inc()
    requests.inc(2.5)
    assert requests.value == 3.5
    with pytest.raises(ValueError, match="only goes up"):
        requests.inc(-1)


def test_gauge_goes_both_ways(registry: MetricsRegistry) -> None:
    depth = registry.gauge("queue_depth")
    depth.inc(5)
    depth.dec(2)
    assert depth.value == 3
    depth.set(-1.5)
    assert depth.value == -1.5


def test_label_children_are_cached_whatever_the_spelling(registry: MetricsRegistry) -> None:
    requests = registry.counter("http_requests_total", "", ("route", "status"))
    child = requests.labels(route="/x", status="200")
    assert requests.labels(route="/x", status="200") is child
    assert requests.labels(status="200", route="/x") is child
    assert requests.labels("/x", "200") is child
    assert requests.labels("/x", 200) is child  # values are strings, as in Prometheus
    requests.labels(route="/x", status=200).inc()
    assert child.value == 1
    assert [values for values, _ in requests.children()] == [("/x", "200")]


def test_equal_but_differently_spelled_values_are_different_labels(
    registry: MetricsRegistry,
) -> None:
    flags = registry.counter("flags_total", "", ("value",))
    one = flags.labels(value="1")
    assert flags.labels(value=1) is one
    assert flags.labels(value=True) is not one  # "True"
    assert flags.labels(value=1.0) is not one  # "1.0"
    assert flags.labels(1.0) is flags.labels("1.0")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {"route": "/x"}, "got route"),
        (("/x",), {}, "got 1 values"),
        (("/x",), {"status": "1"}, "by position or name"),
        ((), {"route": "/x", "status": "1", "extra": "2"}, "got route, status, extra"),
    ],
)
def test_wrong_labels_are_explained(
    registry: MetricsRegistry, args: tuple[str, ...], kwargs: dict[str, str], message: str
) -> None:
    requests = registry.counter("http_requests_total", "", ("route", "status"))
    with pytest.raises(InvalidLabels, match=message) as caught:
        requests.labels(*args, **kwargs)
    assert caught.value.expected == ("route", "status")


def test_unlabelled_and_labelled_calls_are_not_mixed(registry: MetricsRegistry) -> None:
    with pytest.raises(InvalidLabels, match="labels"):
        registry.counter("a_total", "", ("x",)).inc()
    with pytest.raises(InvalidLabels, match="no labels"):
        registry.counter("b_total").labels("x")


@pytest.mark.parametrize(
    ("name", "labels"),
    [("1abc", ()), ("a-b", ()), ("ok", ("__reserved",)), ("ok", ("a", "a")), ("ok", ("a-b",))],
)
def test_bad_names_are_rejected(
    registry: MetricsRegistry, name: str, labels: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidMetricName):
        registry.counter(name, "", labels)


def test_reserved_labels_per_type(registry: MetricsRegistry) -> None:
    with pytest.raises(InvalidMetricName, match="reserved"):
        registry.histogram("h", "", ("le",))
    with pytest.raises(InvalidMetricName, match="reserved"):
        registry.summary("s", "", ("quantile",))


def test_cardinality_is_capped(clock: ManualClock) -> None:
    registry = MetricsRegistry(clock=clock, max_children=3)
    users = registry.counter("logins_total", "", ("user",))
    for user in ("a", "b", "c"):
        users.labels(user).inc()
    with pytest.raises(CardinalityError) as caught:
        users.labels("d")
    assert caught.value.limit == 3
    users.labels("a").inc()  # existing combinations keep working


def test_remove_and_clear(registry: MetricsRegistry) -> None:
    requests = registry.counter("r_total", "", ("route",))
    old = requests.labels("/x")
    old.inc()
    assert requests.remove(route="/x")
    assert not requests.remove("/x")
    assert requests.labels("/x") is not old
    requests.clear()
    assert requests.children() == []


@pytest.mark.parametrize("n", [1, FOLD_AT - 1, FOLD_AT, FOLD_AT + 1, 3 * FOLD_AT + 7])
def test_histogram_buckets_are_exact_across_batches(registry: MetricsRegistry, n: int) -> None:
    rng = random.Random(n)
    values = [rng.uniform(0, 12) for _ in range(n)]
    latency = registry.histogram("latency_seconds", buckets=(0.5, 1, 5, 10))
    for v in values:
        latency.observe(v)
    expected = [sum(v <= b for v in values) for b in (0.5, 1, 5, 10)] + [n]
    assert [count for _, count in latency.labels().buckets()] == expected


def test_histogram_stats_are_exact_or_within_one_percent(registry: MetricsRegistry) -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(-3, 1) for _ in range(10_000)]
    latency = registry.histogram("latency_seconds", "", ("route",))
    child = latency.labels("/x")
    for v in values:
        child.observe(v)
    stats = child.stats()
    assert stats.count == len(values)
    assert stats.sum == pytest.approx(math.fsum(values))
    assert (stats.min, stats.max) == (min(values), max(values))
    assert stats.avg == pytest.approx(math.fsum(values) / len(values))
    ordered = sorted(values)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        want = ordered[math.floor(q * (len(values) - 1))]
        assert stats.get(name) == pytest.approx(want, rel=0.01)


def test_histogram_drops_nan_and_infinities(registry: MetricsRegistry) -> None:
    h = registry.histogram("h")
    for v in (1.0, math.nan, math.inf, -math.inf, 2.0):
        h.observe(v)
    stats = h.stats()
    assert (stats.count, stats.sum) == (2, 3.0)
    assert h.labels().dropped == 3


def test_histogram_rejects_non_numbers_at_once(registry: MetricsRegistry) -> None:
    with pytest.raises((TypeError, ValueError)):
        registry.histogram("h").observe("fast")  # type: ignore[arg-type]


def test_timer_observes_elapsed_seconds(registry: MetricsRegistry) -> None:
    h = registry.histogram("work_seconds")
    with h.time():
        pass
    stats = h.stats()
    assert stats.count == 1 and stats.min is not None and stats.min >= 0


def test_summary_window_forgets_old_values(registry: MetricsRegistry, clock: ManualClock) -> None:
    size = registry.summary("payload_bytes", max_age=60, age_buckets=3)
    for _ in range(100):
        size.observe(1000.0)
    clock.advance(30)
    for _ in range(100):
        size.observe(10.0)
    stats = size.stats()
    assert stats.count == 200 and stats.max == 1000.0
    clock.advance(31)  # the first batch is now older than max_age
    stats = size.stats()
    assert stats.count == 200 and stats.sum == pytest.approx(101_000)  # cumulative
    assert (stats.min, stats.max, stats.get("p99")) == (10.0, 10.0, 10.0)
    clock.advance(60)
    stats = size.stats()
    assert stats.get("p50") is None and stats.avg is None and stats.count == 200


def test_summary_files_a_slow_trickle_under_its_first_time(
    registry: MetricsRegistry, clock: ManualClock
) -> None:
    s = registry.summary("s", max_age=60, age_buckets=3)
    s.observe(5.0)  # sits in the buffer (below FOLD_AT) while time passes
    clock.advance(70)
    assert s.stats().get("p50") is None
    assert s.stats().count == 1


def test_concurrent_increments_are_not_lost(registry: MetricsRegistry) -> None:
    hits = registry.counter("hits_total", "", ("shard",)).labels("a")
    h = registry.histogram("h", "", ("shard",)).labels("a")

    def work() -> None:
        for _ in range(20_000):
            hits.inc()
            h.observe(0.1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hits.value == 80_000
    assert h.stats().count == 80_000
