"""A DDSketch quantile sketch that takes values in batches.

The bins and the key mapping are ddsketch's own (`LogarithmicMapping`,
`CollapsingLowestDenseStore`), so quantiles carry DDSketch's guarantee: every reported
quantile is within ``relative_accuracy`` (1% by default) of the true value. What
differs from `ddsketch.DDSketch.add` is ingestion: a sorted batch is mapped to keys in a
list comprehension and counted with `collections.Counter`, which costs a fraction of
one ``add`` call per value. That is what lets the metric hot path just append to a buffer.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any

from ddsketch.mapping import LogarithmicMapping
from ddsketch.store import CollapsingLowestDenseStore

__all__ = ["DEFAULT_BIN_LIMIT", "RELATIVE_ACCURACY", "QuantileSketch"]

#: The relative error of every percentile the plugin reports, unless configured otherwise.
RELATIVE_ACCURACY = 0.01
#: Bins per sign; with 1% accuracy 2048 bins span values over 17 orders of magnitude,
#: beyond which the smallest values are collapsed together (memory stays bounded).
DEFAULT_BIN_LIMIT = 2048


def _multiplier(relative_accuracy: float) -> float:
    # Computed with the exact float operations of LogarithmicMapping, so our keys are
    # identical to mapping.key() and the sketch stays mergeable with plain DDSketches.
    multiplier = 1 / math.log1p(2 * relative_accuracy / (1 - relative_accuracy))
    multiplier *= math.log(2)
    return multiplier


class QuantileSketch:
    """Mergeable quantile sketch with exact count, sum, min and max.

    Not thread-safe by itself: the metric that owns it holds its lock.
    """

    __slots__ = (
        "_bin_limit",
        "_mapping",
        "_min_possible",
        "_multiplier",
        "_negative",
        "_positive",
        "count",
        "max",
        "min",
        "relative_accuracy",
        "sum",
        "zero_count",
    )

    def __init__(
        self, relative_accuracy: float = RELATIVE_ACCURACY, bin_limit: int = DEFAULT_BIN_LIMIT
    ) -> None:
        self.relative_accuracy = relative_accuracy
        self._bin_limit = bin_limit
        self._mapping = LogarithmicMapping(relative_accuracy)
        self._multiplier = _multiplier(relative_accuracy)
        self._min_possible: float = self._mapping.min_possible
        self._positive = CollapsingLowestDenseStore(bin_limit)
        self._negative = CollapsingLowestDenseStore(bin_limit)
        self.zero_count = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Add one finite value."""
        self.add_sorted([value])

    def add_many(self, values: Iterable[float]) -> None:
        """Add finite values in any order."""
        self.add_sorted(sorted(values))

    def add_sorted(self, values: Sequence[float], total: float | None = None) -> None:
        """Add finite values sorted ascending; ``total`` is their sum if already known."""
        n = len(values)
        if n == 0:
            return
        tiny = self._min_possible
        # Sorted input splits into negatives, zeros and positives with two bisections;
        # like DDSketch, values within [-min_possible, min_possible] count as zero.
        lo = bisect_left(values, -tiny)
        hi = bisect_right(values, tiny, lo)
        log, ceil, mult = math.log, math.ceil, self._multiplier
        if hi < n:
            _add_counts(self._positive, Counter([ceil(log(v, 2) * mult) for v in values[hi:]]))
        if lo:
            _add_counts(self._negative, Counter([ceil(log(-v, 2) * mult) for v in values[:lo]]))
        self.zero_count += hi - lo
        self.count += n
        self.sum += math.fsum(values) if total is None else total
        if values[0] < self.min:
            self.min = values[0]
        if values[-1] > self.max:
            self.max = values[-1]

    def add_weighted(self, pairs: Sequence[tuple[float, int]], total: float) -> None:
        """Add ``count`` copies of each ``value`` (positive, ascending), summing to ``total``.

        For distributions known only as bucket counts: the sum stays exact, the
        percentiles are as good as the representative values.
        """
        weights: Counter[int] = Counter()
        n, tiny = 0, self._min_possible
        for value, count in pairs:
            if count <= 0:
                continue
            n += count
            if value <= tiny:
                self.zero_count += count
            else:
                weights[math.ceil(math.log(value, 2) * self._multiplier)] += count
            self.min = min(self.min, value)
            self.max = max(self.max, value)
        if weights:
            _add_counts(self._positive, weights)
        self.count += n
        self.sum += total

    def merge(self, other: QuantileSketch) -> None:
        """Fold ``other`` into this sketch; both must share the relative accuracy."""
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError(
                f"cannot merge sketches of relative accuracy {other.relative_accuracy} and "
                f"{self.relative_accuracy}; create both with the same accuracy"
            )
        if other.count == 0:
            return
        self._positive.merge(other._positive)
        self._negative.merge(other._negative)
        self.zero_count += other.zero_count
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def copy(self) -> QuantileSketch:
        """An independent copy."""
        clone = QuantileSketch(self.relative_accuracy, self._bin_limit)
        clone.merge(self)
        return clone

    @property
    def avg(self) -> float | None:
        """Exact mean of the values, or None when empty."""
        return self.sum / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1) within the relative accuracy; None if empty."""
        return self.quantiles([q])[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Several quantiles in one pass over the bins (same semantics as DDSketch)."""
        if self.count == 0:
            return [None for _ in qs]
        neg_count = self._negative.count
        pos_cum: list[float] | None = None
        neg_cum: list[float] | None = None
        out: list[float | None] = []
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile must be within [0, 1], got {q!r}")
            rank = q * (self.count - 1)
            if rank < neg_count:
                neg_cum = neg_cum or list(accumulate(self._negative.bins))
                # Negative values are stored by magnitude: walk from the largest magnitude.
                key = self._key_at(self._negative, neg_cum, neg_count - rank - 1, lower=False)
                value = -self._mapping.value(key)
            elif rank < neg_count + self.zero_count:
                value = 0.0
            else:
                pos_cum = pos_cum or list(accumulate(self._positive.bins))
                key = self._key_at(self._positive, pos_cum, rank - neg_count - self.zero_count)
                value = self._mapping.value(key)
            # The bin's representative value may fall just outside the observed range.
            out.append(min(max(value, self.min), self.max))
        return out

    @staticmethod
    def _key_at(
        store: CollapsingLowestDenseStore, cum: list[float], rank: float, *, lower: bool = True
    ) -> int:
        # Equivalent to DenseStore.key_at_rank, with a bisection instead of a Python loop.
        i = bisect_right(cum, rank) if lower else bisect_left(cum, rank + 1)
        if i >= len(cum):
            return int(store.max_key)
        return int(i + store.offset)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (bins as ``{key: count}``), for snapshots."""
        return {
            "relative_accuracy": self.relative_accuracy,
            "bin_limit": self._bin_limit,
            "positive": _bins(self._positive),
            "negative": _bins(self._negative),
            "zero_count": self.zero_count,
            "sum": self.sum,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantileSketch:
        """Rebuild a sketch from `to_dict` output."""
        sketch = cls(float(data["relative_accuracy"]), int(data["bin_limit"]))
        for store, bins in (
            (sketch._positive, data["positive"]),
            (sketch._negative, data["negative"]),
        ):
            for key, weight in bins.items():
                store.add(int(key), weight)
        sketch.zero_count = int(data["zero_count"])
        sketch.count = int(sketch._positive.count + sketch._negative.count) + sketch.zero_count
        sketch.sum = float(data["sum"])
        if sketch.count:
            sketch.min = float(data["min"])
            sketch.max = float(data["max"])
        return sketch


def _add_counts(store: CollapsingLowestDenseStore, counts: Counter[int]) -> None:
    """Add ``{key: weight}`` whose keys are monotonic (they come from sorted values)."""
    keys = list(counts)
    # Widen the store to both extremes first: every other key then lands inside the
    # range, instead of growing (and re-centring) the bins one key at a time.
    for key in {keys[0], keys[-1]}:
        store.add(key, counts.pop(key))
    for key, weight in counts.items():
        store.add(key, weight)


def _bins(store: CollapsingLowestDenseStore) -> dict[str, int]:
    if store.count == 0:
        return {}
    return {str(i + store.offset): int(weight) for i, weight in enumerate(store.bins) if weight}
