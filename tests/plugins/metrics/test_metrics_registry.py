"""MetricsRegistry: declaring, selecting, sampling, stale clean-up."""

from __future__ import annotations

import pytest
from orrery.sdk.testing import ManualClock
from orrery_metrics import DuplicateMetric, MetricsRegistry, SeriesKey


@pytest.fixture
def registry(clock: ManualClock) -> MetricsRegistry:
    return MetricsRegistry(clock=clock)


def test_declaring_twice_returns_the_same_metric(registry: MetricsRegistry) -> None:
    first = registry.counter("jobs_total", "Jobs", ("queue",))
    assert registry.counter("jobs_total", "Jobs", ("queue",)) is first
    assert registry.get("jobs_total") is first
    assert "jobs_total" in registry and len(registry) == 1


@pytest.mark.parametrize(
    "redeclare",
    [
        lambda r: r.gauge("jobs_total", "", ("queue",)),
        lambda r: r.counter("jobs_total", "", ("queue", "priority")),
    ],
    ids=["other-type", "other-labels"],
)
def test_conflicting_declaration_is_refused(registry: MetricsRegistry, redeclare) -> None:  # type: ignore[no-untyped-def]
    registry.counter("jobs_total", "", ("queue",))
    with pytest.raises(DuplicateMetric) as caught:
        redeclare(registry)
    assert caught.value.name == "jobs_total"
    assert caught.value.existing == "counter(queue)"


def test_iteration_is_sorted_and_unregister_forgets(registry: MetricsRegistry) -> None:
    registry.gauge("b")
    registry.counter("a_total")
    assert [m.name for m in registry] == ["a_total", "b"]
    assert registry.unregister("b") and not registry.unregister("b")
    assert [m.name for m in registry] == ["a_total"]


def test_select_matches_metric_and_labels(registry: MetricsRegistry) -> None:
    requests = registry.counter("http_requests_total", "", ("route", "status"))
    for route, status in (("/a", "200"), ("/a", "500"), ("/b", "503")):
        requests.labels(route, status).inc()
    registry.gauge("other", "", ("status",)).labels("500").set(1)

    def selected(selector: str) -> list[tuple[str, ...]]:
        return sorted(values for _, values, _ in registry.select(selector))

    assert selected('http_requests_total{status=~"5.."}') == [("/a", "500"), ("/b", "503")]
    assert selected('http_requests_total{route="/a",status!="200"}') == [("/a", "500")]
    assert selected('{status="500"}') == [("/a", "500"), ("500",)]
    assert selected("missing_metric") == []


def test_sample_gives_one_series_per_statistic(registry: MetricsRegistry) -> None:
    registry.counter("c_total", "", ("k",)).labels("v").inc(3)
    h = registry.histogram("h_seconds")
    h.observe(1.0)
    h.observe(3.0)
    samples = dict(registry.sample())
    assert samples[SeriesKey("c_total", (("k", "v"),), "value")] == 3
    assert samples[SeriesKey("h_seconds", (), "count")] == 2
    assert samples[SeriesKey("h_seconds", (), "sum")] == 4
    assert samples[SeriesKey("h_seconds", (), "avg")] == 2
    assert dict(registry.sample()) == samples  # nothing new: the same figures again
    assert {key.stat for key in samples if key.metric == "h_seconds"} == {
        "count",
        "sum",
        "avg",
        "p50",
        "p90",
        "p95",
        "p99",
    }


def test_empty_distributions_sample_only_defined_values(registry: MetricsRegistry) -> None:
    registry.summary("s")
    assert {key.stat for key, _ in registry.sample()} == {"count", "sum"}


def test_remove_stale_drops_quiet_labelled_series(
    registry: MetricsRegistry, clock: ManualClock
) -> None:
    hits = registry.counter("hits_total", "", ("user",))
    total = registry.counter("all_total")
    hits.labels("busy").inc()
    hits.labels("quiet").inc()
    registry.sample(clock())
    clock.advance(50)
    hits.labels("busy").inc()
    registry.sample(clock())
    clock.advance(20)
    assert registry.remove_stale(clock(), ttl=60) == 1
    assert [values for values, _ in hits.children()] == [("busy",)]
    assert [values for values, _ in total.children()] == [()]  # unlabelled: kept
