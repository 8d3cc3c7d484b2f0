"""Bus traffic counters by topic prefix (the topic's first token), read at scrape time.

Publishing pays one integer increment on its cached `Route`; the counts are folded into
the per-prefix `Traffic` when a route leaves the cache, and added up when someone asks
(`TrafficBook.snapshot`), the way a prometheus_client custom collector reads a value
only when scraped.
"""

from __future__ import annotations

from ._target import Target

__all__ = ["OTHER_PREFIX", "Route", "Traffic", "TrafficBook"]

#: Where traffic is counted once `MAX_PREFIXES` distinct prefixes have been seen.
OTHER_PREFIX = "~other"
MAX_PREFIXES = 1024


class Traffic:
    """Counters of one topic prefix."""

    __slots__ = ("deadlettered", "delivered", "failed", "published")

    def __init__(self) -> None:
        self.published = 0
        self.delivered = 0
        self.failed = 0
        self.deadlettered = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "published": self.published,
            "delivered": self.delivered,
            "failed": self.failed,
            "deadlettered": self.deadlettered,
        }


class Route:
    """A resolved topic: the targets it goes to, and how many publishes took it since
    it was resolved (not yet folded into its prefix's `Traffic`)."""

    __slots__ = ("count", "targets", "traffic")

    def __init__(self, targets: tuple[Target, ...], traffic: Traffic) -> None:
        self.targets = targets
        self.traffic = traffic
        self.count = 0

    def fold(self) -> None:
        """Move the publish count into the prefix counters (each target got each one)."""
        count = self.count
        if count:
            self.count = 0
            traffic = self.traffic
            traffic.published += count
            traffic.delivered += count * len(self.targets)


class TrafficBook:
    """The `Traffic` of every prefix seen, bounded to `MAX_PREFIXES`."""

    __slots__ = ("_by_prefix",)

    def __init__(self) -> None:
        self._by_prefix: dict[str, Traffic] = {}

    def of(self, topic: str) -> Traffic:
        """The counters of ``topic``'s prefix."""
        prefix = topic.partition(".")[0]
        traffic = self._by_prefix.get(prefix)
        if traffic is None:
            if len(self._by_prefix) >= MAX_PREFIXES:
                prefix = OTHER_PREFIX
                traffic = self._by_prefix.get(prefix)
            if traffic is None:
                traffic = self._by_prefix[prefix] = Traffic()
        return traffic

    def snapshot(self, live: list[Route]) -> dict[str, dict[str, int]]:
        """Totals per prefix, including what the ``live`` routes counted so far."""
        pending: dict[int, list[int]] = {}
        for route in live:
            if route.count:
                extra = pending.setdefault(id(route.traffic), [0, 0])
                extra[0] += route.count
                extra[1] += route.count * len(route.targets)
        out: dict[str, dict[str, int]] = {}
        for prefix, traffic in sorted(self._by_prefix.items()):
            counts = traffic.as_dict()
            more = pending.get(id(traffic))
            if more is not None:
                counts["published"] += more[0]
                counts["delivered"] += more[1]
            out[prefix] = counts
        return out
