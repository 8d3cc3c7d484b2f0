"""Exports: Prometheus exposition (through prometheus_client), JSON and CSV."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from ._children import CounterChild, GaugeChild, HistogramChild, SummaryChild
from ._family import Counter, Gauge, Histogram, Metric, Summary
from ._registry import MetricsRegistry
from ._stats import PERCENTILES, percentile_name
from ._timeseries import SeriesKey, SeriesStore

__all__ = [
    "PROMETHEUS_CONTENT_TYPE",
    "Exposition",
    "MetricsCollector",
    "export_csv",
    "export_json",
    "export_series_csv",
    "metric_json",
    "prometheus_exposition",
    "prometheus_text",
]

#: Content type of `prometheus_text` output: the classic text format 0.0.4, which
#: ``generate_latest`` writes and every Prometheus version accepts.
PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def _le(bound: float) -> str:
    # Prometheus spells bucket bounds like Go's float formatting: "+Inf", "0.5", "1.0".
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class MetricsCollector(Collector):
    """A prometheus_client collector that yields our registry's metrics as families.

    Register it in any `prometheus_client.CollectorRegistry` (the daemon's, or the
    default one) to expose Orrery metrics beside others.
    """

    def __init__(self, registry: MetricsRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        """One metric family per metric, one sample set per label combination."""
        for metric in self._registry:
            family = _family(metric)
            if family is not None:
                yield family


def _family(metric: Metric[Any]) -> Any:
    names = list(metric.labelnames)
    if isinstance(metric, Counter):
        counter = CounterMetricFamily(metric.name, metric.help, labels=names)
        for values, c in metric.children():
            counter.add_metric(list(values), c.value, created=c.created)
        return counter
    if isinstance(metric, Gauge):
        gauge = GaugeMetricFamily(metric.name, metric.help, labels=names)
        for values, g in metric.children():
            gauge.add_metric(list(values), g.value)
        return gauge
    if isinstance(metric, Histogram):
        histogram = HistogramMetricFamily(metric.name, metric.help, labels=names)
        for values, h in metric.children():
            buckets, total = h.cumulative()
            histogram.add_metric(list(values), [(_le(b), n) for b, n in buckets], total)
        return histogram
    if isinstance(metric, Summary):
        summary = SummaryMetricFamily(metric.name, metric.help, labels=names)
        for values, s in metric.children():
            stats = s.stats()
            labels = metric.labels_dict(values)
            for q in PERCENTILES:
                value = stats.percentiles[percentile_name(q)]
                quantile = {**labels, "quantile": repr(q)}
                summary.samples.append(
                    Sample(metric.name, quantile, math.nan if value is None else value)
                )
            summary.add_metric(list(values), stats.count, stats.sum)
        return summary
    return None


def prometheus_text(registry: MetricsRegistry) -> str:
    """The registry in the Prometheus text exposition format (`PROMETHEUS_CONTENT_TYPE`)."""
    return prometheus_exposition(registry)()[1].decode("utf-8")


#: ``() -> (content_type, body)``: a scrape, for servers that know nothing of our types.
Exposition = Callable[[], tuple[str, bytes]]


def prometheus_exposition(registry: MetricsRegistry) -> Exposition:
    """A callable answering one Prometheus scrape of ``registry``."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(MetricsCollector(registry))

    def expose() -> tuple[str, bytes]:
        return PROMETHEUS_CONTENT_TYPE, generate_latest(scrape)

    return expose


def child_data(child: Any) -> dict[str, Any]:
    """A child's current value, or statistics and buckets, as JSON-able data."""
    if isinstance(child, (CounterChild, GaugeChild)):
        return {"value": child.value}
    if isinstance(child, HistogramChild):
        data: dict[str, Any] = child.stats().as_dict()
        data["buckets"] = {_le(bound): count for bound, count in child.buckets()}
        return data
    if isinstance(child, SummaryChild):
        return child.stats().as_dict()
    raise TypeError(f"unknown metric child {child!r}")


def export_json(registry: MetricsRegistry) -> dict[str, Any]:
    """Every metric and series as JSON-able data.

    ``{"metrics": [{"name", "type", "help", "labels", "series": [{"labels": {...},
    "value"}|{"labels", "count", "sum", "min", "max", "avg", "p50", ...}]}]}``
    """
    return {"metrics": [metric_json(metric) for metric in registry]}


def metric_json(metric: Metric[Any]) -> dict[str, Any]:
    """One metric of `export_json`: declaration and every series' current data."""
    return {
        "name": metric.name,
        "type": metric.kind,
        "help": metric.help,
        "labels": list(metric.labelnames),
        "series": [
            {"labels": metric.labels_dict(values), **child_data(child)}
            for values, child in metric.children()
        ],
    }


def _labels_text(labels: Iterable[tuple[str, str]]) -> str:
    return ";".join(f"{k}={v}" for k, v in labels)


def export_csv(registry: MetricsRegistry) -> str:
    """Current values as CSV: ``metric,type,labels,stat,value`` (labels as ``k=v;k=v``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "type", "labels", "stat", "value"])
    for metric in registry:
        for values, child in metric.children():
            labels = _labels_text(zip(metric.labelnames, values, strict=True))
            for stat, value in child_data(child).items():
                if stat == "buckets":
                    for le, count in value.items():
                        writer.writerow([metric.name, metric.kind, labels, f"le={le}", count])
                else:
                    writer.writerow(
                        [metric.name, metric.kind, labels, stat, "" if value is None else value]
                    )
    return out.getvalue()


def export_series_csv(
    store: SeriesStore,
    keys: Iterable[SeriesKey] | None = None,
    start: float = -math.inf,
    end: float = math.inf,
) -> str:
    """Time series as CSV: ``timestamp,metric,labels,stat,value,count,min,max``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "metric", "labels", "stat", "value", "count", "min", "max"])
    for key in store.keys() if keys is None else keys:
        for p in store.points(key, start, end):
            writer.writerow(
                [
                    p.t,
                    key.metric,
                    _labels_text(key.labels),
                    key.stat,
                    p.value,
                    p.count,
                    p.min,
                    p.max,
                ]
            )
    return out.getvalue()
