"""What the kernel is doing, computed when asked: the ``orrery.kernel`` service.

Instrumentation must cost nothing when no one reads it, so nothing here runs on the
bus's hot path: `KernelIntrospection.snapshot` walks the bus's subscriptions and the
plugin table only when called (the metrics plugin does so once per evaluation interval,
and on each Prometheus scrape). The only thing recorded as it happens is HTTP traffic,
by the daemon's middleware, into `HttpStats`: a fixed set of counters per route
template, so memory stays bounded whatever the traffic.

The service is registered under the name ``"orrery.kernel"`` (owner ``<kernel>``,
which no plugin can be called); plugins reach it with
``ctx.services.get("orrery.kernel")`` and read plain data from ``snapshot()``, so they
need no import of the kernel.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orrery.sdk import ServiceNotFound

if TYPE_CHECKING:  # the kernel module imports this one to register the service
    from ._kernel import Kernel

__all__ = [
    "HTTP_BUCKETS",
    "KERNEL_SERVICE",
    "KERNEL_SERVICE_OWNER",
    "UNMATCHED_ROUTE",
    "HttpStats",
    "KernelIntrospection",
    "provide_introspection",
]

#: Service name under which the kernel provides its `KernelIntrospection`.
KERNEL_SERVICE = "orrery.kernel"
#: The registry owner of that service; not a valid plugin name, so no plugin can
#: replace or withdraw it.
KERNEL_SERVICE_OWNER = "<kernel>"
#: Upper bounds (seconds) of the request latency buckets: Prometheus' defaults, which
#: dashboards and ``histogram_quantile`` queries commonly assume.
HTTP_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
#: The route recorded for requests no route matched (404s): raw paths would let any
#: client grow the table.
UNMATCHED_ROUTE = "<unmatched>"
#: Where requests go once `HttpStats.max_routes` distinct routes have been seen.
OVERFLOW_ROUTE = "<other>"


@dataclass(slots=True)
class _RouteStats:
    """Counters of one ``(method, route template)``; a fixed size per route."""

    statuses: dict[int, int] = field(default_factory=dict)
    count: int = 0
    sum: float = 0.0
    max: float = 0.0
    #: Non-cumulative counts per `HTTP_BUCKETS` bound, plus one for ``+Inf``.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(HTTP_BUCKETS) + 1))


class HttpStats:
    """Request counts and latencies per route template, in bounded memory.

    At most ``max_routes`` ``(method, route)`` pairs are tracked (route templates are
    few, but plugins come and go); further ones are pooled under ``<other>``. Status
    codes are bounded by HTTP itself. `record` is called by the daemon once per request
    and only touches integers and floats: no allocation after a route's first request.
    """

    __slots__ = ("_routes", "max_routes", "overflowed")

    def __init__(self, max_routes: int = 512) -> None:
        if max_routes < 1:
            raise ValueError(f"max_routes must be at least 1, got {max_routes}")
        self.max_routes = max_routes
        self._routes: dict[tuple[str, str], _RouteStats] = {}
        #: Requests pooled under ``<other>`` because the table was full.
        self.overflowed = 0

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        """Account for one answered request (``route`` is the template, not the path)."""
        key = (method, route)
        stats = self._routes.get(key)
        if stats is None:
            if len(self._routes) >= self.max_routes:
                self.overflowed += 1
                key = (method, OVERFLOW_ROUTE)
                stats = self._routes.get(key)
            if stats is None:
                # May exceed max_routes by the few <other> keys (one per method): bounded.
                stats = self._routes[key] = _RouteStats()
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if not math.isfinite(seconds) or seconds < 0:
            return  # a clock step: count the request, not a nonsense duration
        stats.count += 1
        stats.sum += seconds
        if seconds > stats.max:
            stats.max = seconds
        # bisect_left: a duration equal to a bound belongs to that bucket (``le``).
        stats.buckets[bisect_left(HTTP_BUCKETS, seconds)] += 1

    def __len__(self) -> int:
        return len(self._routes)

    def snapshot(self) -> dict[str, Any]:
        """Plain data: per route, status counts and a cumulative latency histogram.

        ``{"buckets": [bounds...], "overflowed": n, "routes": [{"method", "route",
        "requests": {"200": n, ...}, "count", "sum", "max", "cumulative": [n, ..., total]}]}``
        where ``cumulative[i]`` counts durations ``<= buckets[i]`` and the last entry is
        the total (``+Inf``).
        """
        routes = []
        for (method, route), stats in sorted(self._routes.items()):
            running, cumulative = 0, []
            for n in stats.buckets:
                running += n
                cumulative.append(running)
            routes.append(
                {
                    "method": method,
                    "route": route,
                    "requests": {str(code): n for code, n in sorted(stats.statuses.items())},
                    "count": stats.count,
                    "sum": stats.sum,
                    "max": stats.max,
                    "cumulative": cumulative,
                }
            )
        return {"buckets": list(HTTP_BUCKETS), "overflowed": self.overflowed, "routes": routes}


def _owner_name(source: str) -> str:
    # Subscription owners are client sources, ``orrery://<node>/<plugin>``: the plugin
    # (or "kernel") is what an operator recognises, and it is bounded by the plugins.
    return source.rsplit("/", 1)[-1] or source


class KernelIntrospection:
    """The ``orrery.kernel`` service: a snapshot of the kernel on demand.

    ``snapshot()`` returns plain, JSON-able data::

        {"node_id", "bus_backend", "time",
         "plugins": {"total", "by_state": {state: n}, "items": [{name, state, version,
                     sandbox, restarts}]},
         "sandbox_restarts": {plugin: n},           # sandboxed plugins only
         "bus": {"subscriptions": n, "queue_depth": {owner: n},
                 "traffic": {prefix: {published, delivered, failed, deadlettered}}},
         "http": HttpStats.snapshot()}

    ``http`` is fed by the daemon's middleware (empty when the kernel is embedded
    without the daemon).
    """

    def __init__(self, kernel: Kernel, http: HttpStats | None = None) -> None:
        self._kernel = kernel
        self.http = http if http is not None else HttpStats()

    def queue_depth(self) -> dict[str, int]:
        """Events queued and not yet handled, per subscribing plugin (or ``kernel``)."""
        bus = self._kernel._bus
        depth: dict[str, int] = {}
        if bus is None:
            return depth
        for sub in bus.subscriptions:
            owner = _owner_name(sub.owner)
            depth[owner] = depth.get(owner, 0) + sub.pending
        return depth

    def bus_traffic(self) -> dict[str, dict[str, int]]:
        """Bus events by topic prefix (the first token): ``published`` on this node,
        ``delivered`` to subscribers here (each one counts), ``failed`` handler attempts
        and ``deadlettered`` events. The bus only increments counters as events pass;
        this adds them up now."""
        bus = self._kernel._bus
        return {} if bus is None else bus.traffic()

    def plugins(self) -> dict[str, Any]:
        """Plugin states, counts by state and sandbox restarts."""
        manager = self._kernel._manager
        infos = sorted(manager.infos.values(), key=lambda i: i.name) if manager else []
        by_state: dict[str, int] = {}
        items = []
        for info in infos:
            state = str(info.state)
            by_state[state] = by_state.get(state, 0) + 1
            items.append(
                {
                    "name": info.name,
                    "state": state,
                    "version": info.version,
                    "sandbox": info.sandbox,
                    "restarts": info.restarts,
                }
            )
        return {"total": len(items), "by_state": by_state, "items": items}

    def snapshot(self) -> dict[str, Any]:
        """Everything above, computed now."""
        plugins = self.plugins()
        depth = self.queue_depth()
        bus = self._kernel._bus
        return {
            "node_id": self._kernel._node_id,
            "bus_backend": self._kernel.config.bus.backend,
            "time": time.time(),
            "plugins": plugins,
            "sandbox_restarts": {
                p["name"]: p["restarts"] for p in plugins["items"] if p["sandbox"]
            },
            "bus": {
                "subscriptions": len(bus.subscriptions) if bus is not None else 0,
                "queue_depth": depth,
                "traffic": self.bus_traffic(),
            },
            "http": self.http.snapshot(),
        }


def provide_introspection(kernel: Kernel) -> KernelIntrospection:
    """The kernel's `KernelIntrospection`, registered as service ``orrery.kernel`` on first use.

    Idempotent, so both the kernel (at start) and the daemon (to feed ``http``) can call
    it and share one instance. Needs a started kernel (its service registry).
    """
    services = kernel.services
    try:
        current = services.get(KERNEL_SERVICE)
    except ServiceNotFound:
        current = None
    if isinstance(current, KernelIntrospection):
        return current
    introspection = KernelIntrospection(kernel)
    services.set(KERNEL_SERVICE_OWNER, KERNEL_SERVICE, introspection)
    return introspection
