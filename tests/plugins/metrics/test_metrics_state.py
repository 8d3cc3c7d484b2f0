"""Registry state as plain data, across a reload."""

from __future__ import annotations

import json

from orrery.sdk.testing import ManualClock
from orrery_metrics import MetricsEngine, MetricsRegistry
from orrery_metrics._state import dump_registry, load_registry


def test_every_type_round_trips_through_json(clock: ManualClock) -> None:
    before = MetricsRegistry(clock=clock)
    before.counter("c_total", "C", ("k",)).labels("a").inc(3)
    before.gauge("g").set(-2)
    h = before.histogram("h_seconds", "H", buckets=(1, 2))
    s = before.summary("s_bytes", max_age=60, age_buckets=3)
    for v in (0.5, 1.5, 3.0):
        h.observe(v)
        s.observe(v)
    data = json.loads(json.dumps(dump_registry(before)))

    after = MetricsRegistry(clock=clock)
    assert load_registry(after, data) == []
    assert after.counter("c_total", "C", ("k",)).labels("a").value == 3
    assert after.gauge("g").value == -2
    restored = after.histogram("h_seconds", "H", buckets=(1, 2)).labels()
    assert restored.buckets() == h.labels().buckets()
    assert after.histogram("h_seconds").stats() == h.stats()
    assert after.summary("s_bytes").stats() == s.stats()


def test_conflicting_declarations_are_skipped_and_named(clock: ManualClock) -> None:
    before = MetricsRegistry(clock=clock)
    before.counter("jobs_total", "", ("queue",)).labels("a").inc()
    before.gauge("ok").set(1)
    after = MetricsRegistry(clock=clock)
    after.gauge("jobs_total")  # the new version declares it differently
    assert load_registry(after, dump_registry(before)) == ["jobs_total"]
    assert after.gauge("ok").value == 1


def test_engine_ignores_empty_and_refuses_unknown_versions(clock: ManualClock) -> None:
    engine = MetricsEngine(clock=clock)
    assert engine.restore({}) == []
    assert engine.restore({"version": 99}) == ["<state version 99 not understood>"]
