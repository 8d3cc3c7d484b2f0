"""Routing: which targets a topic goes to, with queue groups and a per-topic cache.

The trie holds one target per fan-out subscription and one `Group` per (pattern, group)
pair. A publish looks the topic up in a bounded dict first; only a miss walks the trie.
Adding or removing a target drops the cached entries it could affect: the one entry of a
literal pattern, or the whole cache for a wildcard pattern. A cached entry is a `Route`,
which also counts the publishes that took it (see `_traffic.py`).
"""

from __future__ import annotations

from orrery.sdk import Event, validate_topic

from ._subscription import MemorySubscription
from ._target import Target, Waiter
from ._traffic import Route, TrafficBook
from ._trie import SubjectTrie

__all__ = ["Group", "RouteTable"]


class Group(Target):
    """Competing consumers: the members of one (pattern, group) pair share its events.

    Each event goes to exactly one member, round robin; a member whose queue is full is
    skipped while another has room, so one slow member does not hold the group back.
    """

    __slots__ = ("members", "name", "pattern", "_next")

    def __init__(self, pattern: str, name: str, seq: int) -> None:
        super().__init__(seq=seq)
        self.pattern = pattern
        self.name = name
        self.members: list[MemorySubscription] = []
        self._next = 0

    def offer(self, event: Event) -> Waiter | None:
        members = self.members
        count = len(members)
        if not count:
            return None  # emptied by a handler while this event was being routed
        start = self._next % count
        for step in range(count):
            index = (start + step) % count
            member = members[index]
            if member.has_room():
                self._next = index + 1
                return member.offer(event)
        self._next = start + 1
        return members[start].offer(event)

    def __repr__(self) -> str:
        return f"<Group {self.name!r} on {self.pattern!r}: {len(self.members)} member(s)>"


class RouteTable:
    """Subscriptions indexed by pattern, plus the cache of resolved topics.

    ``cache`` maps a topic to its `Route`: the targets it goes to, in subscription order.
    The dict object is never replaced, so clients may keep a reference to it for the hot
    path. ``traffic`` holds the counters by topic prefix.
    """

    __slots__ = ("_cache_size", "_groups", "_seq", "_trie", "cache", "traffic")

    def __init__(self, cache_size: int = 4096) -> None:
        self._trie: SubjectTrie[Target] = SubjectTrie()
        self._groups: dict[tuple[str, str], Group] = {}
        self._seq = 0
        self._cache_size = cache_size
        self.cache: dict[str, Route] = {}
        self.traffic = TrafficBook()

    def __len__(self) -> int:
        """The number of targets (fan-out subscriptions and groups)."""
        return len(self._trie)

    def next_seq(self) -> int:
        """A number that orders targets by when they were created."""
        self._seq += 1
        return self._seq

    def add(self, sub: MemorySubscription) -> None:
        """Route matching topics to ``sub`` (or to its group)."""
        pattern = sub.pattern
        if sub.group is None:
            self._trie.add(pattern, sub)
        else:
            key = (pattern, sub.group)
            group = self._groups.get(key)
            if group is not None:
                group.members.append(sub)
                return  # the routes still go to the same group object
            group = self._groups[key] = Group(pattern, sub.group, self.next_seq())
            group.members.append(sub)
            self._trie.add(pattern, group)
        self._invalidate(pattern)

    def remove(self, sub: MemorySubscription) -> bool:
        """Stop routing to ``sub``; returns whether it was routed."""
        pattern = sub.pattern
        if sub.group is None:
            if not self._trie.remove(pattern, sub):
                return False
        else:
            key = (pattern, sub.group)
            group = self._groups.get(key)
            if group is None or sub not in group.members:
                return False
            group.members.remove(sub)
            if group.members:
                return True
            del self._groups[key]
            self._trie.remove(pattern, group)
        self._invalidate(pattern)
        return True

    def add_target(self, pattern: str, target: Target) -> None:
        """Route topics matching ``pattern`` to ``target`` (e.g. a durable consumer)."""
        self._trie.add(pattern, target)
        self._invalidate(pattern)

    def remove_target(self, pattern: str, target: Target) -> bool:
        """Stop routing ``pattern`` to ``target``; returns whether it was routed."""
        if not self._trie.remove(pattern, target):
            return False
        self._invalidate(pattern)
        return True

    def resolve(self, topic: str) -> Route:
        """The route of ``topic``, validating it; fills the cache."""
        cached = self.cache.get(topic)
        if cached is not None:
            return cached
        validate_topic(topic)
        targets = self._trie.match(topic)
        if len(targets) > 1:
            targets.sort(key=_seq_of)
        route = Route(tuple(targets), self.traffic.of(topic))
        cache = self.cache
        if len(cache) >= self._cache_size:
            # Clearing beats LRU bookkeeping on the hot path; hot topics refill at once.
            self._clear()
        cache[topic] = route
        return route

    def traffic_snapshot(self, extra: list[Route]) -> dict[str, dict[str, int]]:
        """Traffic per topic prefix, counting the cached routes and ``extra`` ones."""
        return self.traffic.snapshot([*self.cache.values(), *extra])

    def _invalidate(self, pattern: str) -> None:
        if "*" in pattern or ">" in pattern:
            self._clear()
        else:
            route = self.cache.pop(pattern, None)
            if route is not None:
                route.fold()

    def _clear(self) -> None:
        for route in self.cache.values():
            route.fold()
        self.cache.clear()


def _seq_of(target: Target) -> int:
    return target.seq
