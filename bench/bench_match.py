"""Topic matching with 10,000 subscriptions: trie + cache against a linear scan.

10,000 subscriptions on one MemoryBus mix literal patterns (``svc12.created.v1``), one-
token wildcards (``svc12.*.v1``, and 1% cross-service ``*.created.*``) and tails
(``svc12.>``). For a sample of
topics (most matching some subscriptions, some matching none) we time, per topic:

cold     resolving a topic that is not cached: validation, trie walk, ordering (the cache
         is cleared before each lookup)
warm     resolving a cached topic: the dict hit a steady publisher pays
linear   the floor to beat: `orrery.sdk.subject_matches` against every pattern

Run: ``python bench/bench_match.py``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from orrery.kernel.bus import MemoryBus  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.sdk import Event, subject_matches

SUBSCRIPTIONS = 10_000
TOPICS = 500
REPEATS = 5
LINEAR_TOPICS = 50
ACTIONS = ("created", "updated", "deleted", "moved")


def _handler(event: Event) -> None:
    return None


def _patterns(rng: random.Random, services: list[str]) -> list[str]:
    patterns: list[str] = []
    for i in range(SUBSCRIPTIONS):
        service = rng.choice(services)
        shape = i % 5
        if i % 100 == 99:
            # A few cross-service listeners (audit, metrics) that match many topics.
            patterns.append(f"*.{rng.choice(ACTIONS)}.*")
        elif shape in (0, 1):
            patterns.append(f"{service}.{rng.choice(ACTIONS)}.v1")
        elif shape == 2:
            patterns.append(f"{service}.*.v1")
        elif shape == 3:
            patterns.append(f"{service}.>")
        else:
            patterns.append(f"{service}.{rng.choice(ACTIONS)}.*")
    return patterns


def _best_us(body: Callable[[], None], per: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter_ns()
        body()
        best = min(best, (time.perf_counter_ns() - start) / per / 1000)
    return best


def run() -> dict[str, float]:
    """Microseconds per topic lookup, cold and warm, and the linear-scan floor."""
    rng = random.Random(42)
    services = [f"svc{i}" for i in range(1000)]
    patterns = _patterns(rng, services)
    bus = MemoryBus("bench", route_cache_size=2 * TOPICS)
    client = bus.client("orrery://bench/bench")
    for pattern in patterns:
        client.subscribe(pattern, _handler)
    topics = [
        f"{rng.choice(services)}.{rng.choice(ACTIONS)}.v{rng.randint(1, 2)}"
        for _ in range(TOPICS - TOPICS // 10)
    ]
    topics += [f"other{i}.event" for i in range(TOPICS // 10)]  # matching nothing
    route = bus.route
    cache = bus.route_cache

    def cold() -> None:
        for topic in topics:
            cache.clear()
            route(topic)

    lookup = cache.get  # what publish does first

    def warm() -> None:
        for topic in topics:
            if lookup(topic) is None:
                route(topic)

    def linear() -> None:
        for topic in topics[:LINEAR_TOPICS]:
            [p for p in patterns if subject_matches(p, topic)]

    matched = sum(len(route(t).targets) for t in topics) / len(topics)
    cold_us = _best_us(cold, len(topics))
    warm()  # fill the cache
    warm_us = _best_us(warm, len(topics))
    linear_us = _best_us(linear, LINEAR_TOPICS)
    for topic in topics[:LINEAR_TOPICS]:  # the trie must agree with the reference
        expected = sorted(p for p in patterns if subject_matches(p, topic))
        got = sorted(getattr(target, "pattern", "") for target in route(topic).targets)
        assert got == expected, topic
    return {
        "bus.match_10k_us": cold_us,
        "bus.match_10k_warm_us": warm_us,
        "bus.match_linear_10k_us": linear_us,
        "bus.match_ratio_vs_linear": cold_us / linear_us,
        "bus.match_warm_ratio_vs_linear": warm_us / linear_us,
        "bus.match_10k_avg_matches": matched,
    }


def main() -> None:
    results = run()
    linear = results["bus.match_linear_10k_us"]
    print(
        f"topic lookup with {SUBSCRIPTIONS:,} subscriptions, "
        f"{results['bus.match_10k_avg_matches']:.1f} matches per topic on average"
    )
    print(f"{'lookup':28} {'us/topic':>10} {'vs linear':>10}")
    for name, key in (
        ("linear scan (floor)", "bus.match_linear_10k_us"),
        ("trie, cold (cache miss)", "bus.match_10k_us"),
        ("cache, warm", "bus.match_10k_warm_us"),
    ):
        print(f"{name:28} {results[key]:10.3f} {results[key] / linear:10.5f}")
    print()
    for key, value in results.items():
        print(f"{key} = {value:.4f}")


if __name__ == "__main__":
    main()
