"""SeriesStore: retention, downsampling, queries, rates, clean-up."""

from __future__ import annotations

import pytest
from orrery_metrics import SeriesKey, SeriesStore, Tier

KEY = SeriesKey.of("mem_bytes", {"host": "a"})
T0 = 1_699_999_980.0  # on a minute boundary, so tier buckets line up


def fill(store: SeriesStore, values: list[float], step: float = 10.0) -> None:
    for i, v in enumerate(values):
        store.record(T0 + i * step, [(KEY, v)])


def test_raw_points_are_kept_for_the_retention() -> None:
    store = SeriesStore(retention=60, tiers=())
    fill(store, [float(i) for i in range(20)])  # 0..190 s
    assert len(store.points(KEY)) == 20
    dropped = store.cleanup(T0 + 190)
    points = store.points(KEY)
    assert dropped == 13
    assert [p.t - T0 for p in points] == [130, 140, 150, 160, 170, 180, 190]


def test_series_that_aged_out_entirely_are_removed() -> None:
    store = SeriesStore(retention=60, tiers=(Tier(60, 120),))
    fill(store, [1.0, 2.0])
    store.cleanup(T0 + 1000)
    assert len(store) == 0 and store.keys() == []


def test_downsampled_tier_keeps_exact_count_sum_min_max() -> None:
    store = SeriesStore(retention=30, tiers=(Tier(60, 3600),))
    fill(store, [float(i) for i in range(12)])  # two one-minute buckets of 6 points each
    store.cleanup(T0 + 110)
    buckets = store.points(KEY, resolution=60)
    assert [(p.count, p.value, p.min, p.max) for p in buckets] == [
        (6, 2.5, 0.0, 5.0),
        (6, 8.5, 6.0, 11.0),
    ]
    # The raw level no longer reaches back to T0, so a query from T0 uses the tier.
    assert store.points(KEY, T0) == buckets
    stats = store.aggregate(KEY, T0)
    assert (stats.count, stats.sum, stats.min, stats.max) == (12, 66.0, 0.0, 11.0)


def test_aggregate_over_raw_points() -> None:
    store = SeriesStore(retention=3600)
    fill(store, [float(v) for v in range(1, 101)])
    stats = store.aggregate(KEY)
    assert (stats.count, stats.sum, stats.min, stats.max, stats.avg) == (100, 5050, 1, 100, 50.5)
    assert stats.get("p50") == pytest.approx(50, rel=0.01)
    assert stats.get("p99") == pytest.approx(99, rel=0.01)
    window = store.aggregate(KEY, T0 + 500, T0 + 590)
    assert (window.count, window.min, window.max) == (10, 51, 60)


def test_rate_handles_counter_resets() -> None:
    store = SeriesStore(retention=3600)
    fill(store, [0, 10, 20, 5, 15])  # restart after 20: +10 +10 +5 +10 over 40 s
    assert store.rate(KEY, window=40, now=T0 + 40) == pytest.approx(35 / 40)
    assert store.rate(KEY, window=5, now=T0 + 40) is None  # one point is no rate


def test_last_and_keys_with_selector() -> None:
    store = SeriesStore()
    other = SeriesKey.of("mem_bytes", {"host": "b"}, "value")
    store.record(T0, [(KEY, 1.0), (other, 2.0)])
    store.record(T0 + 1, [(KEY, 3.0)])
    last = store.last(KEY)
    assert last is not None and (last.t, last.value) == (T0 + 1, 3.0)
    assert store.keys('mem_bytes{host="b"}') == [other]
    assert store.keys(stat="value") == [KEY, other]


def test_series_count_is_bounded() -> None:
    store = SeriesStore(max_series=2)
    keys = [SeriesKey.of("m", {"i": str(i)}) for i in range(3)]
    store.record(T0, [(k, 1.0) for k in keys])
    assert len(store) == 2 and store.refused == 1


def test_points_per_series_are_bounded() -> None:
    store = SeriesStore(retention=10**9, max_points=5, tiers=())
    fill(store, [float(i) for i in range(50)])
    assert [p.value for p in store.points(KEY)] == [45, 46, 47, 48, 49]


def test_round_trip_through_plain_data() -> None:
    store = SeriesStore(retention=30, tiers=(Tier(60, 3600),))
    fill(store, [float(i) for i in range(12)])
    clone = SeriesStore(retention=30, tiers=(Tier(60, 3600),))
    clone.load(store.to_dict())
    assert clone.points(KEY) == store.points(KEY)
    assert clone.points(KEY, resolution=60) == store.points(KEY, resolution=60)
