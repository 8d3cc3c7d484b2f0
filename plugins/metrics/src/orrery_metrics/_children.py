"""One time series of a metric (one label combination): the objects on the hot path.

``inc`` and ``observe`` do the least possible under a lock. Observations go to a small
buffer that is folded into the bucket counts and the quantile sketch in batches
(`FOLD_AT` values, or on any read), so memory stays bounded and a sketch insertion is
paid once per batch rather than once per value.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from ._sketch import QuantileSketch
from ._stats import PERCENTILES, Stats

__all__ = [
    "Now",
    "FOLD_AT",
    "Child",
    "CounterChild",
    "GaugeChild",
    "HistogramChild",
    "SummaryChild",
    "Timer",
]

#: Seconds since the epoch, like `time.time`: what the registry stamps children with
#: (the plugin passes ``ctx.clock.now``, so tests decide the time).
Now = Callable[[], float]

#: Buffered observations per series before they are folded into the sketch.
FOLD_AT = 512


class Child:
    """One labelled series of a metric; the registry's sampling bookkeeping is public
    (``sampled``, ``sampled_values``, ``changed_at``) because the registry owns it."""

    __slots__ = ("_lock", "changed_at", "created", "sampled", "sampled_values")

    def __init__(self, created: float) -> None:
        self._lock = threading.Lock()
        self.created = created
        # Set by the registry when it samples, to find series that stopped changing.
        self.sampled: float | None = None
        self.sampled_values: list[tuple[str, float]] = []
        self.changed_at = created

    def signature(self) -> float:
        raise NotImplementedError

    def dump_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state(self, data: Mapping[str, Any]) -> None:
        raise NotImplementedError


class CounterChild(Child):
    """A monotonically increasing value."""

    __slots__ = ("_value",)

    def __init__(self, created: float) -> None:
        super().__init__(created)
        self._value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1); a counter never goes down."""
        if amount < 0:
            raise ValueError(f"a counter only goes up; got inc({amount!r}), use a gauge")
        with self._lock:
            self._value += amount

    @property
    def value(self) -> float:
        """The current total."""
        return self._value

    def dump_state(self) -> dict[str, Any]:
        return {"value": self._value}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self._value = float(data["value"])

    def signature(self) -> float:
        return self._value


class GaugeChild(Child):
    """A value that goes up and down."""

    __slots__ = ("_value",)

    def __init__(self, created: float) -> None:
        super().__init__(created)
        self._value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount``."""
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount``."""
        with self._lock:
            self._value -= amount

    def set(self, value: float) -> None:
        """Set the value."""
        value = float(value)
        with self._lock:  # so a concurrent inc() cannot write back a stale sum over it
            self._value = value

    @property
    def value(self) -> float:
        """The current value."""
        return self._value

    def dump_state(self) -> dict[str, Any]:
        return {"value": self._value}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self._value = float(data["value"])

    def signature(self) -> float:
        return self._value


class Timer:
    """Context manager that observes the seconds spent inside it."""

    __slots__ = ("_observe", "_start")

    def __init__(self, observe: Callable[[float], None]) -> None:
        self._observe = observe
        self._start = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._observe(time.perf_counter() - self._start)


class _Distribution(Child):
    """A child that buffers observations and folds them into its sketches in batches."""

    __slots__ = ("_buf", "dropped")

    def __init__(self, created: float) -> None:
        super().__init__(created)
        self._buf: list[float] = []
        #: Observations ignored because they were NaN or infinite.
        self.dropped = 0

    def time(self) -> Timer:
        """``with d.time(): ...`` observes the block's duration in seconds."""
        return Timer(self.observe)

    def observe(self, value: float) -> None:
        raise NotImplementedError

    def _take_buffered(self) -> tuple[list[float], float]:
        """Empty the buffer: its finite values sorted, and their sum.

        NaN and infinities cannot be placed in a sketch: they are counted in `dropped`.
        """
        buf = self._buf
        if not buf:
            return [], 0.0
        total = sum(buf)
        if math.isfinite(total):
            values = sorted(buf)
        else:  # rare path
            values = sorted(v for v in buf if math.isfinite(v))
            total = sum(values)
            self.dropped += len(buf) - len(values)
        buf.clear()
        return values, total


class HistogramChild(_Distribution):
    """A distribution with cumulative buckets and percentiles since creation."""

    __slots__ = ("_counts", "_sketch", "bounds")

    def __init__(self, created: float, bounds: Sequence[float], relative_accuracy: float) -> None:
        super().__init__(created)
        #: Upper bounds of the finite buckets; ``+Inf`` is implied.
        self.bounds = tuple(bounds)
        self._counts = [0] * len(self.bounds)
        self._sketch = QuantileSketch(relative_accuracy)

    def observe(self, value: float) -> None:
        """Record one value."""
        with self._lock:
            buf = self._buf
            buf.append(float(value))
            if len(buf) >= FOLD_AT:
                self._fold()

    def _fold(self) -> None:
        values, total = self._take_buffered()
        if not values:
            return
        counts = self._counts
        for i, bound in enumerate(self.bounds):
            counts[i] += bisect_right(values, bound)
        self._sketch.add_sorted(values, total)

    def stats(self, quantiles: Sequence[float] = PERCENTILES) -> Stats:
        """count / sum / min / max / avg and percentiles of every value observed."""
        with self._lock:
            self._fold()
            return Stats.of(self._sketch, quantiles)

    def add_buckets(self, counts: Sequence[int], total: float, top: float | None = None) -> None:
        """Add observations known only as per-bucket counts (not cumulative).

        ``counts`` has one entry per bound plus one for ``+Inf``; ``total`` is their sum
        and ``top`` the largest (the ``+Inf`` bucket's stand-in). Buckets, count and sum
        come out exact; percentiles (and min/max) take each bucket's upper bound, so
        they are as coarse as the buckets.
        """
        if len(counts) != len(self.bounds) + 1:
            raise ValueError(
                f"expected {len(self.bounds) + 1} bucket counts (one per bound and +Inf), "
                f"got {len(counts)}"
            )
        if any(c < 0 for c in counts):
            raise ValueError(f"bucket counts cannot be negative: {list(counts)}")
        edge = self.bounds[-1] if self.bounds else 0.0
        overflow = max(edge, top) if top is not None and math.isfinite(top) else edge
        values = [*self.bounds, overflow]
        with self._lock:
            self._fold()
            running = 0
            for i in range(len(self.bounds)):
                running += counts[i]
                self._counts[i] += running
            self._sketch.add_weighted(list(zip(values, counts, strict=True)), total)

    def buckets(self) -> list[tuple[float, int]]:
        """Cumulative ``(upper_bound, count)`` pairs, ending with ``(inf, total)``."""
        return self.cumulative()[0]

    def cumulative(self) -> tuple[list[tuple[float, int]], float]:
        """`buckets` and the sum of the values, read together (as a scrape needs)."""
        with self._lock:
            self._fold()
            buckets = [*zip(self.bounds, self._counts, strict=True), (math.inf, self._sketch.count)]
            return buckets, self._sketch.sum

    def sketch(self) -> QuantileSketch:
        """A copy of the sketch of every value observed (mergeable across series)."""
        with self._lock:
            self._fold()
            return self._sketch.copy()

    @property
    def count(self) -> int:
        """Number of values observed."""
        with self._lock:
            return self._sketch.count + len(self._buf)

    def dump_state(self) -> dict[str, Any]:
        with self._lock:
            self._fold()
            return {"counts": list(self._counts), "sketch": self._sketch.to_dict()}

    def load_state(self, data: Mapping[str, Any]) -> None:
        counts = [int(c) for c in data["counts"]]
        if len(counts) != len(self.bounds):
            return  # the buckets were reconfigured: old counts no longer mean anything
        with self._lock:
            self._counts = counts
            self._sketch = QuantileSketch.from_dict(data["sketch"])

    def signature(self) -> float:
        return self.count


class SummaryChild(_Distribution):
    """A distribution with percentiles over a sliding time window.

    Count and sum are cumulative, as Prometheus expects of a summary; min, max, avg and
    percentiles cover the last ``max_age`` seconds, kept as ``age_buckets`` mergeable
    sketches that expire one at a time.
    """

    __slots__ = (
        "_accuracy",
        "_clock",
        "_count",
        "_epochs",
        "_buf_epoch",
        "_buf_until",
        "_sketches",
        "_sum",
        "_width",
    )

    def __init__(
        self,
        created: float,
        clock: Now,
        relative_accuracy: float,
        max_age: float,
        age_buckets: int,
    ) -> None:
        super().__init__(created)
        self._clock = clock
        self._accuracy = relative_accuracy
        self._width = max_age / age_buckets
        self._sketches = [QuantileSketch(relative_accuracy) for _ in range(age_buckets)]
        self._epochs = [-1] * age_buckets
        self._buf_epoch = 0
        self._buf_until = -math.inf
        self._count = 0
        self._sum = 0.0

    def observe(self, value: float) -> None:
        """Record one value."""
        now = self._clock()
        with self._lock:
            if now >= self._buf_until:
                # A new window slot began: what is buffered belongs to the previous one.
                self._fold()
                self._buf_epoch = int(now // self._width)
                self._buf_until = (self._buf_epoch + 1) * self._width
            buf = self._buf
            buf.append(float(value))
            if len(buf) >= FOLD_AT:
                self._fold()

    def _fold(self) -> None:
        values, total = self._take_buffered()
        if not values:
            return
        epoch = self._buf_epoch
        i = epoch % len(self._sketches)
        if self._epochs[i] < epoch:
            self._sketches[i] = QuantileSketch(self._accuracy)
            self._epochs[i] = epoch
        self._sketches[i].add_sorted(values, total)
        self._count += len(values)
        self._sum += total

    def _window(self) -> QuantileSketch:
        now = int(self._clock() // self._width)
        oldest = now - len(self._sketches)
        merged = QuantileSketch(self._accuracy)
        for epoch, sketch in zip(self._epochs, self._sketches, strict=True):
            if oldest < epoch <= now:
                merged.merge(sketch)
        return merged

    def stats(self, quantiles: Sequence[float] = PERCENTILES) -> Stats:
        """Cumulative count and sum; min / max / avg / percentiles of the window."""
        with self._lock:
            self._fold()
            return Stats.of(self._window(), quantiles, count=self._count, total=self._sum)

    def sketch(self) -> QuantileSketch:
        """The merged sketch of the current window."""
        with self._lock:
            self._fold()
            return self._window()

    @property
    def count(self) -> int:
        """Number of values observed since creation."""
        with self._lock:
            return self._count + len(self._buf)

    def dump_state(self) -> dict[str, Any]:
        with self._lock:
            self._fold()
            return {
                "count": self._count,
                "sum": self._sum,
                "window": [
                    [epoch, sketch.to_dict()]
                    for epoch, sketch in zip(self._epochs, self._sketches, strict=True)
                    if epoch >= 0
                ],
            }

    def load_state(self, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._count = int(data["count"])
            self._sum = float(data["sum"])
            n = len(self._sketches)
            for epoch, raw in data.get("window", []):
                sketch = QuantileSketch.from_dict(raw)
                if sketch.relative_accuracy == self._accuracy:
                    self._epochs[epoch % n] = int(epoch)
                    self._sketches[epoch % n] = sketch

    def signature(self) -> float:
        return self.count
