"""Registry state as plain data, handed across a hot reload (or a process boundary)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._family import Histogram, Metric, Summary
from ._registry import MetricsRegistry

__all__ = ["dump_registry", "load_registry"]


def _declaration(metric: Metric[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": metric.name,
        "type": metric.kind,
        "help": metric.help,
        "labels": list(metric.labelnames),
    }
    if isinstance(metric, Histogram):
        out["buckets"] = list(metric.buckets)
    elif isinstance(metric, Summary):
        out["max_age"] = metric.max_age
        out["age_buckets"] = metric.age_buckets
    return out


def dump_registry(registry: MetricsRegistry) -> dict[str, Any]:
    """Every metric's declaration and every child's values, as JSON-able data."""
    return {
        "metrics": [
            {
                **_declaration(metric),
                "children": [
                    {"values": list(values), **child.dump_state()}
                    for values, child in metric.children()
                ],
            }
            for metric in registry
        ]
    }


def _declare(registry: MetricsRegistry, item: Mapping[str, Any]) -> Metric[Any]:
    name, help, labels = item["name"], item.get("help", ""), item.get("labels", ())
    kind = item["type"]
    if kind == "counter":
        return registry.counter(name, help, labels)
    if kind == "gauge":
        return registry.gauge(name, help, labels)
    if kind == "histogram":
        return registry.histogram(name, help, labels, buckets=item["buckets"])
    if kind == "summary":
        return registry.summary(
            name, help, labels, max_age=item["max_age"], age_buckets=item["age_buckets"]
        )
    raise ValueError(f"unknown metric type {kind!r} in saved state")


def load_registry(registry: MetricsRegistry, data: Mapping[str, Any]) -> list[str]:
    """Re-declare saved metrics and restore their values.

    Metrics that cannot be restored (e.g. declared since with other labels) are skipped;
    their names are returned so the caller can log them.
    """
    skipped: list[str] = []
    for item in data.get("metrics", []):
        try:
            metric = _declare(registry, item)
            for child_data in item.get("children", []):
                values = tuple(child_data["values"])
                child = metric.labels(*values) if values else metric.single()
                child.load_state(child_data)
        except (ValueError, KeyError, TypeError):
            skipped.append(str(item.get("name")))
    return skipped
