"""Kernel figures pulled from the kernel's ``orrery.kernel`` service into metrics.

The kernel computes its snapshot only when asked (nothing on its hot paths), and the
plugin asks once per evaluation interval and on each Prometheus scrape. The snapshot is
plain data, so this module needs no import of the kernel; when the service is absent
(an older kernel, or a test harness without it) the plugin simply has no such metrics.

- ``orrery_bus_events_total{prefix}``: events published on this node, by first topic
  token (``orders``, ``orrery``, ``alert``...); ``orrery_bus_delivered_total{prefix}``
  (each local subscriber counts), ``orrery_bus_failed_total{prefix}`` (failed handler
  attempts) and ``orrery_bus_deadlettered_total{prefix}``: the kernel's bus counters,
  like a prometheus_client custom collector they are read when sampled, never per event;
- ``orrery_bus_queue_depth{owner}``: events queued and not yet handled, per plugin;
- ``orrery_plugins{state}``: how many plugins are in each lifecycle state;
- ``orrery_sandbox_restarts_total{plugin}``: worker restarts of sandboxed plugins;
- ``orrery_http_requests_total{route,method,status}``: daemon requests per route template;
- ``orrery_http_request_seconds{route,method}``: their latency, as a histogram with the
  kernel's bucket bounds (exact buckets, count and sum; percentiles per bucket).

The kernel reports running totals; the counters here mirror them. A total that goes
backwards (the daemon's HTTP table was recreated) is treated like a Prometheus counter
reset: counting resumes from the new total on top of what was already counted.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from ._children import CounterChild, HistogramChild
from ._family import Counter, Histogram
from ._instrument import MAX_PREFIXES, OTHER_PREFIX
from ._registry import MetricsRegistry

__all__ = ["KERNEL_SERVICE", "KernelSampler"]

#: Name of the service the kernel provides (``KernelIntrospection``).
KERNEL_SERVICE = "orrery.kernel"


class KernelSampler:
    """Turns ``KernelIntrospection.snapshot()`` data into metrics of a registry."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self._registry = registry
        self.queue_depth = registry.gauge(
            "orrery_bus_queue_depth",
            "Events queued for a subscriber and not yet handled, by subscribing plugin",
            ("owner",),
        )
        self.plugins = registry.gauge("orrery_plugins", "Plugins by lifecycle state", ("state",))
        self.restarts = registry.counter(
            "orrery_sandbox_restarts_total", "Sandbox worker restarts per plugin", ("plugin",)
        )
        self.http_requests = registry.counter(
            "orrery_http_requests_total",
            "Daemon HTTP requests by route template, method and status",
            ("route", "method", "status"),
        )
        self.traffic: dict[str, Counter] = {
            "published": registry.counter(
                "orrery_bus_events_total",
                "Events published on the bus on this node, by first topic token",
                ("prefix",),
            ),
            "delivered": registry.counter(
                "orrery_bus_delivered_total",
                "Events handed to subscribers on this node, by first topic token",
                ("prefix",),
            ),
            "failed": registry.counter(
                "orrery_bus_failed_total", "Failed handler attempts, by first topic token",
                ("prefix",),
            ),
            "deadlettered": registry.counter(
                "orrery_bus_deadlettered_total",
                "Events given up on and dead-lettered, by first topic token",
                ("prefix",),
            ),
        }  # fmt: skip
        self._prefixes: set[str] = set()
        self.http_seconds: Histogram | None = None
        #: What a counter had counted before its source's total went backwards.
        self._base: dict[Hashable, float] = {}
        self._http_base: dict[tuple[str, str], tuple[list[int], float]] = {}
        self.samples = 0

    def sample(self, snapshot: Mapping[str, Any]) -> None:
        """Update every kernel metric from one snapshot."""
        self._queue_depth(snapshot.get("bus", {}).get("queue_depth", {}))
        self._traffic(snapshot.get("bus", {}).get("traffic", {}))
        self._plugins(snapshot.get("plugins", {}).get("by_state", {}))
        for plugin, restarts in snapshot.get("sandbox_restarts", {}).items():
            self._mirror(("restarts", plugin), self.restarts.labels(plugin), restarts)
        http = snapshot.get("http")
        if http:
            self._http(http)
        self.samples += 1

    def _queue_depth(self, depth: Mapping[str, int]) -> None:
        for owner, pending in depth.items():
            self.queue_depth.labels(owner).set(pending)
        # A plugin that stopped has no subscriptions left: drop its series rather
        # than report a stale depth.
        for (owner,), _ in self.queue_depth.children():
            if owner not in depth:
                self.queue_depth.remove(owner)

    def _traffic(self, traffic: Mapping[str, Mapping[str, int]]) -> None:
        # Prefixes are data: the first MAX_PREFIXES seen keep their own series for good,
        # later ones add up under OTHER_PREFIX (so every mirrored total only grows).
        known = self._prefixes
        totals: dict[str, dict[str, int]] = {}
        for prefix, counts in traffic.items():
            if prefix not in known and len(known) < MAX_PREFIXES:
                known.add(prefix)
            into = totals.setdefault(prefix if prefix in known else OTHER_PREFIX, {})
            for kind, value in counts.items():
                into[kind] = into.get(kind, 0) + value
        for prefix, counts in totals.items():
            for kind, family in self.traffic.items():
                total = counts.get(kind, 0)
                if total:
                    self._mirror((kind, prefix), family.labels(prefix), total)

    def _plugins(self, by_state: Mapping[str, int]) -> None:
        for state, count in by_state.items():
            self.plugins.labels(state).set(count)
        for (state,), child in self.plugins.children():
            if state not in by_state:
                child.set(0)  # states are few: keep them at 0 so graphs show the drop

    def _mirror(self, key: Hashable, child: CounterChild, total: float) -> None:
        base = self._base.get(key, 0.0)
        if base + total < child.value:
            base = self._base[key] = child.value
        if base + total > child.value:
            child.inc(base + total - child.value)

    def _histogram(self, bounds: Sequence[float]) -> Histogram | None:
        if self.http_seconds is None:
            self.http_seconds = self._registry.histogram(
                "orrery_http_request_seconds",
                "Daemon HTTP request latency by route template and method",
                ("route", "method"),
                buckets=bounds,
            )
        if tuple(self.http_seconds.buckets) != tuple(bounds):
            return None  # restored with other bounds: mixing them would mean nothing
        return self.http_seconds

    def _http(self, http: Mapping[str, Any]) -> None:
        histogram = self._histogram(http.get("buckets", ()))
        for row in http.get("routes", ()):
            route, method = row["route"], row["method"]
            for status, count in row.get("requests", {}).items():
                child = self.http_requests.labels(route, method, status)
                self._mirror(("http", route, method, status), child, count)
            if histogram is not None:
                self._latency(histogram.labels(route, method), route, method, row)

    def _latency(
        self, child: HistogramChild, route: str, method: str, row: Mapping[str, Any]
    ) -> None:
        cumulative: list[int] = list(row["cumulative"])
        total: float = row["sum"]
        have, have_sum = child.cumulative()
        counted = [n for _, n in have]
        if len(counted) != len(cumulative):
            return
        base, base_sum = self._http_base.get((route, method), ([0] * len(counted), 0.0))
        target = [b + c for b, c in zip(base, cumulative, strict=True)]
        if any(t < c for t, c in zip(target, counted, strict=True)):
            base, base_sum = counted, have_sum  # the kernel's table restarted
            self._http_base[(route, method)] = (base, base_sum)
            target = [b + c for b, c in zip(base, cumulative, strict=True)]
        added = [t - c for t, c in zip(target, counted, strict=True)]
        if not any(added):
            return
        # Cumulative to per-bucket counts, as add_buckets takes them.
        per_bucket = [added[0], *(added[i] - added[i - 1] for i in range(1, len(added)))]
        if any(n < 0 for n in per_bucket):
            return  # inconsistent snapshot (read while a request was recorded): next time
        child.add_buckets(per_bucket, base_sum + total - have_sum, row.get("max"))
