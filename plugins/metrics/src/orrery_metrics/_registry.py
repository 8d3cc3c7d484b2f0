"""The metrics registry: the service other plugins use to declare and update metrics."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from ._children import Child, CounterChild, GaugeChild, HistogramChild, Now, SummaryChild
from ._family import DEFAULT_BUCKETS, Counter, Gauge, Histogram, LabelValues, Metric, Summary
from ._selector import Selector
from ._sketch import RELATIVE_ACCURACY
from ._stats import PERCENTILES, percentile_name
from ._timeseries import SeriesKey
from .errors import DuplicateMetric

__all__ = ["MetricsRegistry", "SeriesSample"]

#: One sampled value of one series.
SeriesSample = tuple[SeriesKey, float]

M = TypeVar("M", bound=Metric[Any])


class MetricsRegistry:
    """Declares, holds and samples metrics.

    Declaring is idempotent: asking twice for the same name with the same type and label
    names returns the same metric, so several plugins can share one. The clock is
    injectable so that windows, staleness and time series are deterministic in tests.
    """

    def __init__(
        self,
        *,
        clock: Now = time.time,
        relative_accuracy: float = RELATIVE_ACCURACY,
        max_children: int = 10_000,
    ) -> None:
        self.clock = clock
        self.relative_accuracy = relative_accuracy
        self.max_children = max_children
        self._metrics: dict[str, Metric[Any]] = {}
        self._lock = threading.Lock()

    # -- declaring ---------------------------------------------------------------------

    def counter(self, name: str, help: str = "", labels: Iterable[str] = ()) -> Counter:
        """Get or create a counter."""
        return self._declare(
            Counter,
            Counter(name, help, labels, clock=self.clock, max_children=self.max_children),
        )

    def gauge(self, name: str, help: str = "", labels: Iterable[str] = ()) -> Gauge:
        """Get or create a gauge."""
        return self._declare(
            Gauge, Gauge(name, help, labels, clock=self.clock, max_children=self.max_children)
        )

    def histogram(
        self,
        name: str,
        help: str = "",
        labels: Iterable[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        """Get or create a histogram with the given bucket upper bounds."""
        metric = Histogram(
            name,
            help,
            labels,
            clock=self.clock,
            buckets=buckets,
            relative_accuracy=self.relative_accuracy,
            max_children=self.max_children,
        )
        return self._declare(Histogram, metric)

    def summary(
        self,
        name: str,
        help: str = "",
        labels: Iterable[str] = (),
        *,
        max_age: float = 600.0,
        age_buckets: int = 5,
    ) -> Summary:
        """Get or create a summary whose percentiles cover the last ``max_age`` seconds."""
        metric = Summary(
            name,
            help,
            labels,
            clock=self.clock,
            max_age=max_age,
            age_buckets=age_buckets,
            relative_accuracy=self.relative_accuracy,
            max_children=self.max_children,
        )
        return self._declare(Summary, metric)

    def _declare(self, kind: type[M], metric: M) -> M:
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is None:
                self._metrics[metric.name] = metric
                return metric
        if type(existing) is not kind or existing.signature != metric.signature:
            raise DuplicateMetric(metric.name, existing.signature, metric.signature)
        return existing

    def unregister(self, name: str) -> bool:
        """Forget a metric; returns whether it existed."""
        with self._lock:
            return self._metrics.pop(name, None) is not None

    # -- reading -----------------------------------------------------------------------

    def get(self, name: str) -> Metric[Any] | None:
        """The metric called ``name``, if declared."""
        return self._metrics.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._metrics

    def __len__(self) -> int:
        return len(self._metrics)

    def __iter__(self) -> Iterator[Metric[Any]]:
        """Metrics sorted by name."""
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda m: m.name)
        return iter(metrics)

    def select(self, selector: Selector | str) -> list[tuple[Metric[Any], LabelValues, Child]]:
        """Every child whose metric and labels match a PromQL-style selector."""
        sel = Selector.parse(selector) if isinstance(selector, str) else selector
        metrics = (
            [self._metrics[sel.metric]]
            if sel.metric in self._metrics
            else ([] if sel.metric is not None else list(self))
        )
        return [
            (metric, values, child)
            for metric in metrics
            for values, child in metric.children()
            if sel.matches(metric.name, metric.labels_dict(values))
        ]

    # -- sampling and clean-up ---------------------------------------------------------

    def sample(self, now: float | None = None) -> list[SeriesSample]:
        """Current value of every series, for the time series store.

        Counters and gauges give ``value``; histograms and summaries give ``count``,
        ``sum``, ``avg`` and the percentiles. Also notes which series changed since the
        previous sample, which `remove_stale` relies on.
        """
        now = self.clock() if now is None else now
        out: list[SeriesSample] = []
        for metric in self:
            for values, child in metric.children():
                labels = tuple(sorted(zip(metric.labelnames, values, strict=True)))
                signature = child.signature()
                changed = signature != child.sampled
                if changed:
                    child.sampled = signature
                    child.changed_at = now
                # A histogram that saw nothing new has the same statistics: skip the
                # sketch walk. (A summary's window moves with time, so it is recomputed.)
                if changed or not isinstance(child, HistogramChild):
                    child.sampled_values = [
                        (stat, value)
                        for stat, value in series_values(child)
                        if value is not None and math.isfinite(value)
                    ]
                out.extend(
                    (SeriesKey(metric.name, labels, stat), value)
                    for stat, value in child.sampled_values
                )
        return out

    def remove_stale(self, now: float, ttl: float) -> int:
        """Drop labelled series unchanged for ``ttl`` seconds; returns how many.

        Staleness is judged from `sample`, so nothing is paid on the hot path.
        """
        removed = 0
        for metric in self:
            if not metric.labelnames:
                continue
            for values, child in metric.children():
                if now - child.changed_at >= ttl:
                    removed += metric.remove(*values)
        return removed


def series_values(child: Child) -> list[tuple[str, float | None]]:
    """The statistics of one child that become time series, by name."""
    if isinstance(child, (CounterChild, GaugeChild)):
        return [("value", child.value)]
    if isinstance(child, (HistogramChild, SummaryChild)):
        stats = child.stats()
        return [
            ("count", float(stats.count)),
            ("sum", stats.sum),
            ("avg", stats.avg),
            *((percentile_name(q), stats.percentiles[percentile_name(q)]) for q in PERCENTILES),
        ]
    raise TypeError(f"unknown metric child {child!r}")
