"""AlertManager: for-durations, de-duplication, resolution, rates, predictions, anomalies."""

from __future__ import annotations

from typing import Any

import pytest
from orrery.sdk.testing import ManualClock
from orrery_metrics import (
    FIRING_TOPIC,
    RESOLVED_TOPIC,
    AlertManager,
    AlertNotice,
    AlertRule,
    MetricsRegistry,
    SeriesStore,
)
from pydantic import ValidationError


@pytest.fixture
def registry(clock: ManualClock) -> MetricsRegistry:
    return MetricsRegistry(clock=clock)


def rule(**fields: Any) -> AlertRule:
    return AlertRule.model_validate({"name": "Test", **fields})


def topics(notices: list[AlertNotice]) -> list[tuple[str, dict[str, str]]]:
    return [(n.topic, n.data["labels"]) for n in notices]


def test_threshold_with_for_goes_pending_then_fires_once_then_resolves(
    registry: MetricsRegistry, clock: ManualClock
) -> None:
    depth = registry.gauge("queue_depth", "", ("queue",))
    manager = AlertManager(
        registry,
        rules=[
            rule(
                expr="queue_depth",
                threshold=100,
                **{"for": 60},
                severity="page",
                labels={"team": "ops"},
                annotations={"summary": "{queue} at {value}"},
            )
        ],
    )
    depth.labels("jobs").set(150)
    assert manager.evaluate(clock()) == []
    assert [a["state"] for a in manager.alerts()] == ["pending"]
    clock.advance(30)
    assert manager.evaluate(clock()) == []
    clock.advance(30)
    (firing,) = manager.evaluate(clock())
    assert firing.topic == FIRING_TOPIC
    assert firing.data["labels"] == {
        "queue": "jobs",
        "team": "ops",
        "alertname": "Test",
        "severity": "page",
    }
    assert firing.data["annotations"] == {"summary": "jobs at 150.0"}
    assert firing.data["value"] == 150 and firing.data["kind"] == "threshold"
    clock.advance(15)
    assert manager.evaluate(clock()) == []  # still firing: not announced again
    depth.labels("jobs").set(10)
    clock.advance(15)
    (resolved,) = manager.evaluate(clock())
    assert resolved.topic == RESOLVED_TOPIC
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.data["resolved_at"] == clock()
    assert manager.alerts() == []


def test_condition_dropping_while_pending_is_silent(
    registry: MetricsRegistry, clock: ManualClock
) -> None:
    g = registry.gauge("g")
    manager = AlertManager(registry, rules=[rule(expr="g", threshold=1, **{"for": 60})])
    g.set(5)
    manager.evaluate(clock())
    g.set(0)
    clock.advance(60)
    assert manager.evaluate(clock()) == []
    g.set(5)
    clock.advance(1)
    assert manager.evaluate(clock()) == []  # the pending period starts over


def test_each_selected_series_is_its_own_alert(
    registry: MetricsRegistry, clock: ManualClock
) -> None:
    errors = registry.counter("errors_total", "", ("route", "code"))
    manager = AlertManager(registry, rules=[rule(expr='errors_total{code=~"5.."}', threshold=3)])
    errors.labels("/a", "500").inc(5)
    errors.labels("/b", "503").inc(9)
    errors.labels("/c", "404").inc(99)
    notices = manager.evaluate(clock())
    assert sorted(n.data["labels"]["route"] for n in notices) == ["/a", "/b"]
    assert len({n.fingerprint for n in notices}) == 2


def test_histogram_percentile_rule(registry: MetricsRegistry, clock: ManualClock) -> None:
    latency = registry.histogram("latency_seconds", "", ("route",))
    manager = AlertManager(
        registry, rules=[rule(expr="latency_seconds", stat="p99", op=">", threshold=0.5)]
    )
    for _ in range(99):
        latency.labels("/fast").observe(0.01)
        latency.labels("/slow").observe(0.01)
    for _ in range(5):
        latency.labels("/slow").observe(2.0)
    (notice,) = manager.evaluate(clock())
    assert notice.data["labels"]["route"] == "/slow"
    assert notice.data["value"] == pytest.approx(2.0, rel=0.01)


def test_rate_rule_uses_the_time_series(registry: MetricsRegistry, clock: ManualClock) -> None:
    store = SeriesStore()
    requests = registry.counter("requests_total")
    manager = AlertManager(
        registry, store, [rule(expr="requests_total", stat="rate", window=60, threshold=5)]
    )
    for _ in range(7):  # 2/s for a minute...
        store.record(clock(), registry.sample(clock()))
        assert manager.evaluate(clock()) == []
        requests.inc(20)
        clock.advance(10)
    for _ in range(7):  # ...then 10/s
        requests.inc(100)
        store.record(clock(), registry.sample(clock()))
        notices = manager.evaluate(clock())
        clock.advance(10)
        if notices:
            break
    assert topics(notices) == [(FIRING_TOPIC, {"alertname": "Test", "severity": "warning"})]
    assert notices[0].data["value"] > 5


def test_series_disappearing_resolves_its_alert(
    registry: MetricsRegistry, clock: ManualClock
) -> None:
    g = registry.gauge("g", "", ("host",))
    manager = AlertManager(registry, rules=[rule(expr="g", threshold=1)])
    g.labels("a").set(5)
    assert len(manager.evaluate(clock())) == 1
    g.remove("a")
    (resolved,) = manager.evaluate(clock.advance(1))
    assert resolved.topic == RESOLVED_TOPIC and resolved.data["labels"]["host"] == "a"


def test_removing_the_rule_resolves_its_alerts(
    registry: MetricsRegistry, clock: ManualClock
) -> None:
    registry.gauge("g").set(5)
    manager = AlertManager(registry, rules=[rule(expr="g", threshold=1)])
    manager.evaluate(clock())
    assert manager.remove_rule("Test")
    (resolved,) = manager.evaluate(clock.advance(1))
    assert resolved.topic == RESOLVED_TOPIC


def test_firing_state_survives_a_snapshot(registry: MetricsRegistry, clock: ManualClock) -> None:
    registry.gauge("g").set(5)
    rules = [rule(expr="g", threshold=1)]
    before = AlertManager(registry, rules=rules)
    assert len(before.evaluate(clock())) == 1
    after = AlertManager(registry, rules=rules)
    after.load(before.to_dict())
    assert after.evaluate(clock.advance(15)) == []  # no second announcement


def test_predictive_rule_fires_before_the_threshold_is_crossed(
    registry: MetricsRegistry, clock: ManualClock
) -> None:
    memory = registry.gauge("memory_ratio")
    manager = AlertManager(
        registry,
        rules=[rule(expr="memory_ratio", threshold=0.8, predict_within=1800, severity="info")],
    )
    value = 0.40
    fired_at_value = None
    for _ in range(100):  # +1% a minute: 0.8 is 40 minutes away at the start
        memory.set(value)
        notices = manager.evaluate(clock())
        if notices:
            fired_at_value = value
            break
        value += 0.01
        clock.advance(60)
    assert fired_at_value is not None and fired_at_value < 0.8
    (notice,) = notices
    assert notice.data["kind"] == "predictive"
    assert 0 < notice.data["eta_seconds"] <= 1800
    # Fires with about 30 minutes to go: 0.8 - 30 * 0.01 = 0.5.
    assert fired_at_value == pytest.approx(0.5, abs=0.02)


def test_anomaly_rule_flags_a_spike_and_resolves_after(
    registry: MetricsRegistry, clock: ManualClock
) -> None:
    g = registry.gauge("latency_ms")
    manager = AlertManager(
        registry, rules=[rule(expr="latency_ms", anomaly={"method": "mad", "window": 30})]
    )
    values = [100.0 + (i % 5) for i in range(40)] + [400.0, 101.0]
    log = []
    for v in values:
        g.set(v)
        log.append([n.topic for n in manager.evaluate(clock())])
        clock.advance(15)
    assert log[:40] == [[]] * 40
    assert log[40] == [FIRING_TOPIC]
    assert log[41] == [RESOLVED_TOPIC]


@pytest.mark.parametrize("method", ["zscore", "mad", "ewma"])
def test_an_anomaly_alert_on_a_constant_series_resolves_after_a_lasting_shift(
    registry: MetricsRegistry, clock: ManualClock, method: str
) -> None:
    g = registry.gauge("replicas")
    spec = {"method": method, "window": 30, "warmup": 5, "relearn": 4}
    manager = AlertManager(registry, rules=[rule(expr="replicas", anomaly=spec)])
    log = []
    for v in [3.0] * 20 + [5.0] * 20:  # scaled from 3 to 5 replicas, and stays there
        g.set(v)
        log.append([n.topic for n in manager.evaluate(clock())])
        clock.advance(15)
    assert log[20] == [FIRING_TOPIC]
    assert log[20 + 4] == [RESOLVED_TOPIC]  # the new level is learned
    assert [t for entry in log for t in entry] == [FIRING_TOPIC, RESOLVED_TOPIC]
    assert manager.alerts() == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expr": "g"}, "threshold is required"),
        ({"expr": "g{", "threshold": 1}, "invalid selector"),
        ({"expr": "g", "threshold": 1, "stat": "median"}, "unknown stat"),
        ({"expr": "g", "threshold": 1, "predict_within": 60, "op": "=="}, "predictive"),
        ({"expr": "g", "threshold": 1, "for": -1}, "greater than or equal"),
        ({"expr": "g", "anomaly": {"method": "magic"}}, "zscore"),
    ],
)
def test_invalid_rules_are_explained(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(**fields)


def test_rule_names_are_unique(registry: MetricsRegistry) -> None:
    with pytest.raises(ValueError, match="unique"):
        AlertManager(registry, rules=[rule(expr="a", threshold=1), rule(expr="b", threshold=1)])
