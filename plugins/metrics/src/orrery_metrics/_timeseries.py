"""Time series of sampled metric values, with retention and downsampling.

Each series keeps raw points for ``retention`` seconds and, per `Tier`, coarser buckets
(count, sum, min, max, last per ``resolution`` seconds) kept for the tier's own retention,
so long ranges stay cheap to keep and to query. Every container has a length bound and
`SeriesStore.cleanup` drops what has aged out, including series that went quiet.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._selector import Selector
from ._sketch import QuantileSketch
from ._stats import PERCENTILES, Stats

__all__ = ["DEFAULT_TIERS", "Point", "SeriesKey", "SeriesStore", "Tier"]


class SeriesKey(NamedTuple):
    """Names one series: metric, sorted label pairs, and which statistic it samples."""

    metric: str
    labels: tuple[tuple[str, str], ...] = ()
    stat: str = "value"

    @classmethod
    def of(
        cls, metric: str, labels: Mapping[str, str] | None = None, stat: str = "value"
    ) -> SeriesKey:
        """Build a key from a label mapping."""
        return cls(metric, tuple(sorted((labels or {}).items())), stat)

    def labels_dict(self) -> dict[str, str]:
        """The labels as a mapping."""
        return dict(self.labels)

    def __str__(self) -> str:
        body = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.metric}{{{body}}}:{self.stat}"


@dataclass(frozen=True, slots=True)
class Tier:
    """A downsampling level: one bucket per ``resolution`` seconds, kept ``retention`` s."""

    resolution: float
    retention: float


#: One-minute buckets for a day, one-hour buckets for thirty days.
DEFAULT_TIERS: tuple[Tier, ...] = (Tier(60.0, 86_400.0), Tier(3_600.0, 30 * 86_400.0))


@dataclass(frozen=True, slots=True)
class Point:
    """A raw sample (count 1) or a downsampled bucket starting at ``t``."""

    t: float
    value: float
    count: int = 1
    min: float | None = None
    max: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        """JSON-able form."""
        return {
            "t": self.t,
            "value": self.value,
            "count": self.count,
            "min": self.min,
            "max": self.max,
        }


class _Bucket:
    __slots__ = ("count", "last", "max", "min", "start", "sum")

    def __init__(self, start: float, value: float) -> None:
        self.start = start
        self.count = 1
        self.sum = self.min = self.max = self.last = value

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        self.last = value
        if value < self.min:
            self.min = value
        elif value > self.max:
            self.max = value

    def point(self) -> Point:
        return Point(self.start, self.sum / self.count, self.count, self.min, self.max)


class _Series:
    __slots__ = ("buckets", "lost", "raw")

    def __init__(self, max_points: int, tiers: Sequence[Tier]) -> None:
        self.raw: deque[tuple[float, float]] = deque(maxlen=max_points)
        self.buckets: list[deque[_Bucket]] = [
            deque(maxlen=math.ceil(tier.retention / tier.resolution) + 1) for tier in tiers
        ]
        # Per level (raw first, then tiers): data before this time may have been dropped.
        self.lost = [-math.inf] * (1 + len(tiers))

    def drop_raw(self) -> None:
        t, _ = self.raw.popleft()
        self.lost[0] = max(self.lost[0], math.nextafter(t, math.inf))

    def drop_bucket(self, level: int, resolution: float) -> None:
        bucket = self.buckets[level].popleft()
        self.lost[level + 1] = max(self.lost[level + 1], bucket.start + resolution)

    def empty(self) -> bool:
        return not self.raw and not any(self.buckets)


class SeriesStore:
    """In-memory time series keyed by `SeriesKey`."""

    def __init__(
        self,
        retention: float = 3_600.0,
        tiers: Sequence[Tier] = DEFAULT_TIERS,
        *,
        max_points: int = 4_096,
        max_series: int = 100_000,
        relative_accuracy: float = 0.01,
    ) -> None:
        if retention <= 0:
            raise ValueError(f"retention must be positive seconds, got {retention!r}")
        self.retention = retention
        self.tiers = tuple(sorted(tiers, key=lambda tier: tier.resolution))
        self.max_points = max_points
        self.max_series = max_series
        self.relative_accuracy = relative_accuracy
        self._series: dict[SeriesKey, _Series] = {}
        #: Samples refused because ``max_series`` was reached.
        self.refused = 0

    def __len__(self) -> int:
        return len(self._series)

    def __contains__(self, key: object) -> bool:
        return key in self._series

    def record(self, t: float, samples: Iterable[tuple[SeriesKey, float]]) -> None:
        """Append one sample per series, all taken at time ``t``."""
        for key, value in samples:
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= self.max_series:
                    self.refused += 1
                    continue
                series = self._series[key] = _Series(self.max_points, self.tiers)
            if len(series.raw) == self.max_points:
                series.drop_raw()
            series.raw.append((t, value))
            for level, (tier, buckets) in enumerate(zip(self.tiers, series.buckets, strict=True)):
                start = t - t % tier.resolution
                if buckets and buckets[-1].start == start:
                    buckets[-1].add(value)
                    continue
                if len(buckets) == buckets.maxlen:
                    series.drop_bucket(level, tier.resolution)
                buckets.append(_Bucket(start, value))

    def cleanup(self, now: float) -> int:
        """Drop points older than their retention and empty series; returns points dropped."""
        dropped = 0
        raw_cutoff = now - self.retention
        for key in list(self._series):
            series = self._series[key]
            while series.raw and series.raw[0][0] < raw_cutoff:
                series.drop_raw()
                dropped += 1
            for level, (tier, buckets) in enumerate(zip(self.tiers, series.buckets, strict=True)):
                cutoff = now - tier.retention
                while buckets and buckets[0].start + tier.resolution <= cutoff:
                    series.drop_bucket(level, tier.resolution)
                    dropped += 1
            if series.empty():
                del self._series[key]
        return dropped

    def keys(
        self, selector: Selector | str | None = None, stat: str | None = None
    ) -> list[SeriesKey]:
        """Keys of stored series, optionally filtered, sorted."""
        sel = Selector.parse(selector) if isinstance(selector, str) else selector
        return sorted(
            key
            for key in self._series
            if (stat is None or key.stat == stat)
            and (sel is None or sel.matches(key.metric, key.labels_dict()))
        )

    def last(self, key: SeriesKey) -> Point | None:
        """The most recent raw point of a series."""
        series = self._series.get(key)
        if series is None or not series.raw:
            return None
        t, value = series.raw[-1]
        return Point(t, value, 1, value, value)

    def points(
        self,
        key: SeriesKey,
        start: float = -math.inf,
        end: float = math.inf,
        *,
        resolution: float | None = None,
    ) -> list[Point]:
        """Points in ``[start, end]``.

        They come from the finest level (raw, then each tier) that still holds all its
        data from ``start`` on, so recent ranges are raw and old ones downsampled. With
        ``resolution``, from the finest tier at least that coarse (raw if 0).
        """
        series = self._series.get(key)
        if series is None:
            return []
        return [p for p in self._source(series, start, resolution) if start <= p.t <= end]

    def _source(self, series: _Series, start: float, resolution: float | None) -> Iterator[Point]:
        if resolution is not None:
            if resolution <= 0 or not self.tiers:
                return self._raw_points(series)
            for tier, buckets in zip(self.tiers, series.buckets, strict=True):
                if tier.resolution >= resolution:
                    return (b.point() for b in buckets)
            return (b.point() for b in series.buckets[-1])
        # The finest level that has lost nothing from ``start`` on; if every level has,
        # the one that lost least.
        best = min(range(len(series.lost)), key=lambda level: series.lost[level])
        for level, lost_until in enumerate(series.lost):
            if start >= lost_until:
                best = level
                break
        if best == 0:
            return self._raw_points(series)
        return (b.point() for b in series.buckets[best - 1])

    @staticmethod
    def _raw_points(series: _Series) -> Iterator[Point]:
        return (Point(t, v, 1, v, v) for t, v in series.raw)

    def aggregate(
        self,
        key: SeriesKey,
        start: float = -math.inf,
        end: float = math.inf,
        quantiles: Sequence[float] = PERCENTILES,
    ) -> Stats:
        """count / sum / min / max / avg and percentiles of the samples in a range.

        Over downsampled buckets count, sum, min and max stay exact; percentiles are
        then taken over bucket averages.
        """
        points = [p for p in self.points(key, start, end) if math.isfinite(p.value)]
        sketch = QuantileSketch(self.relative_accuracy)
        sketch.add_many(p.value for p in points)
        count, total = 0, 0.0
        lo, hi = math.inf, -math.inf
        for p in points:
            count += p.count
            total += p.value * p.count
            lo = min(lo, p.value if p.min is None else p.min)
            hi = max(hi, p.value if p.max is None else p.max)
        stats = Stats.of(sketch, quantiles, count=count, total=total)
        if count == 0:
            return stats
        return Stats(count, total, lo, hi, total / count, stats.percentiles)

    def rate(self, key: SeriesKey, window: float, now: float) -> float | None:
        """Per-second increase of a counter over the last ``window`` seconds.

        A drop in value is read as a counter reset (restart), as Prometheus does.
        None when fewer than two raw points fall in the window.
        """
        points = self.points(key, now - window, now, resolution=0)
        if len(points) < 2:
            return None
        increase = 0.0
        for prev, cur in zip(points, points[1:], strict=False):
            increase += cur.value - prev.value if cur.value >= prev.value else cur.value
        elapsed = points[-1].t - points[0].t
        return increase / elapsed if elapsed > 0 else None

    # -- snapshots ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data holding every series (raw points and buckets)."""
        return {
            "series": [
                {
                    "metric": key.metric,
                    "labels": key.labels_dict(),
                    "stat": key.stat,
                    "raw": [list(p) for p in series.raw],
                    "buckets": [
                        [[b.start, b.count, b.sum, b.min, b.max, b.last] for b in level]
                        for level in series.buckets
                    ],
                }
                for key, series in self._series.items()
            ]
        }

    def load(self, data: Mapping[str, Any]) -> None:
        """Merge series from `to_dict` output (tiers that no longer exist are skipped)."""
        for item in data.get("series", []):
            key = SeriesKey.of(item["metric"], item["labels"], item["stat"])
            series = self._series.setdefault(key, _Series(self.max_points, self.tiers))
            series.raw.extend((float(t), float(v)) for t, v in item["raw"])
            for buckets, stored in zip(series.buckets, item.get("buckets", []), strict=False):
                for start, count, total, lo, hi, last in stored:
                    bucket = _Bucket(start, last)
                    bucket.count, bucket.sum, bucket.min, bucket.max = count, total, lo, hi
                    buckets.append(bucket)
