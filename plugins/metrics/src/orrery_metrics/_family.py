"""Metric families: a named metric with label names and one child per label combination.

``family.labels(route="/x")`` is served from a dictionary keyed by the call's own
arguments, so a repeated call costs one tuple and one lookup; validation runs only the
first time a combination is seen.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from ._children import (
    Child,
    CounterChild,
    GaugeChild,
    HistogramChild,
    Now,
    SummaryChild,
    Timer,
)
from ._stats import PERCENTILES, Stats
from .errors import CardinalityError, InvalidLabels, InvalidMetricName

__all__ = [
    "DEFAULT_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "LabelValues",
    "Metric",
    "Summary",
]

#: prometheus_client's default buckets, in seconds.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
#: Label values of one child, in the order of the metric's label names.
LabelValues = tuple[str, ...]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

ChildT = TypeVar("ChildT", bound=Child)


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid Prometheus metric name."""
    if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
        raise InvalidMetricName(name, "it does not match [a-zA-Z_:][a-zA-Z0-9_:]*")
    return name


def validate_labelnames(names: Iterable[str], reserved: Sequence[str] = ()) -> tuple[str, ...]:
    """Return ``names`` as a tuple if each is a valid, unique, unreserved label name."""
    out = tuple(names)
    for label in out:
        if not isinstance(label, str) or not _LABEL_NAME.fullmatch(label):
            raise InvalidMetricName(label, "a label name must match [a-zA-Z_][a-zA-Z0-9_]*")
        if label.startswith("__"):
            raise InvalidMetricName(label, "names starting with '__' are reserved")
        if label in reserved:
            raise InvalidMetricName(label, "this label is reserved for the metric type")
    if len(set(out)) != len(out):
        raise InvalidMetricName(out, "label names repeat")
    return out


class Metric(Generic[ChildT]):
    """Base of the four metric types: a name, help text, label names and children."""

    #: Prometheus type name.
    kind: ClassVar[str] = ""
    _reserved: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        name: str,
        help: str = "",
        labels: Iterable[str] = (),
        *,
        clock: Now,
        max_children: int = 10_000,
    ) -> None:
        self.name = validate_name(name)
        self.help = help
        self.labelnames = validate_labelnames(labels, self._reserved)
        self._clock = clock
        self._max_children = max_children
        self._lock = threading.Lock()
        self._children: dict[LabelValues, ChildT] = {}
        # Caches from the exact call arguments to the child; entries are only ever
        # added for validated combinations and can be dropped at any time.
        self._by_kwargs: dict[tuple[tuple[str, Any], ...], ChildT] = {}
        self._by_args: dict[tuple[Any, ...], ChildT] = {}
        self._default: ChildT | None = None
        if not self.labelnames:
            self._default = self._children[()] = self._new_child()

    def _new_child(self) -> ChildT:
        raise NotImplementedError

    @property
    def signature(self) -> str:
        """Type and label names, which must agree wherever the metric is declared."""
        return f"{self.kind}({', '.join(self.labelnames)})"

    def labels(self, *values: Any, **labels: Any) -> ChildT:
        """The child for one label combination, by position or by name (created once).

        Label values are strings (others are converted with ``str``); string values
        take the fast path. On a metric without labels, ``labels()`` returns its only
        child.
        """
        try:
            if not labels:
                return self._by_args[values]
            if not values:
                return self._by_kwargs[tuple(labels.items())]
        except (KeyError, TypeError):  # first sight of this spelling, or unhashable values
            pass
        return self._create(values, labels)

    def _canonical(self, values: tuple[Any, ...], labels: dict[str, Any]) -> LabelValues:
        if not self.labelnames:
            if values or labels:
                raise InvalidLabels(self.name, (), "this metric has no labels")
            return ()  # .labels() of an unlabelled metric is its only child
        if values and labels:
            raise InvalidLabels(self.name, self.labelnames, "pass labels by position or name")
        if labels:
            if set(labels) != set(self.labelnames):
                raise InvalidLabels(self.name, self.labelnames, f"got {', '.join(labels)}")
            return tuple(str(labels[name]) for name in self.labelnames)
        if len(values) != len(self.labelnames):
            raise InvalidLabels(self.name, self.labelnames, f"got {len(values)} values")
        return tuple(str(v) for v in values)

    def _create(self, values: tuple[Any, ...], labels: dict[str, Any]) -> ChildT:
        key = self._canonical(values, labels)
        with self._lock:
            child = self._children.get(key)
            if child is None:
                if len(self._children) >= self._max_children:
                    raise CardinalityError(self.name, self._max_children)
                child = self._children[key] = self._new_child()
            # The caches may hold several spellings per child; keep them bounded.
            if len(self._by_kwargs) + len(self._by_args) > 4 * self._max_children:
                self._by_kwargs.clear()
                self._by_args.clear()
            # Only exact strings are cached: 1, 1.0 and True are equal dictionary keys
            # but different label values ("1", "1.0", "True").
            if labels:
                if all(type(v) is str for v in labels.values()):
                    self._by_kwargs[tuple(labels.items())] = child
            elif all(type(v) is str for v in values):
                self._by_args[values] = child
            return child

    def remove(self, *values: Any, **labels: Any) -> bool:
        """Drop one label combination; returns whether it existed."""
        key = self._canonical(values, labels)
        with self._lock:
            removed = self._children.pop(key, None) is not None
            if removed:
                self._by_kwargs.clear()
                self._by_args.clear()
        return removed

    def clear(self) -> None:
        """Drop every label combination (an unlabelled metric keeps its one child)."""
        with self._lock:
            self._children = {(): self._default} if self._default is not None else {}
            self._by_kwargs.clear()
            self._by_args.clear()

    def children(self) -> list[tuple[LabelValues, ChildT]]:
        """A snapshot of ``(label values, child)`` pairs."""
        with self._lock:
            return list(self._children.items())

    def labels_dict(self, values: LabelValues) -> dict[str, str]:
        """Label values of a child as a name -> value mapping."""
        return dict(zip(self.labelnames, values, strict=True))

    def single(self) -> ChildT:
        if self._default is None:
            raise InvalidLabels(self.name, self.labelnames, "call .labels(...) first")
        return self._default

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}{{{', '.join(self.labelnames)}}}>"


class Counter(Metric[CounterChild]):
    """A monotonically increasing count, e.g. requests served."""

    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild(self._clock())

    def inc(self, amount: float = 1.0) -> None:
        """Increment an unlabelled counter."""
        self.single().inc(amount)

    @property
    def value(self) -> float:
        """Value of an unlabelled counter."""
        return self.single().value


class Gauge(Metric[GaugeChild]):
    """A value that goes up and down, e.g. queue depth."""

    kind = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild(self._clock())

    def inc(self, amount: float = 1.0) -> None:
        """Increment an unlabelled gauge."""
        self.single().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        """Decrement an unlabelled gauge."""
        self.single().dec(amount)

    def set(self, value: float) -> None:
        """Set an unlabelled gauge."""
        self.single().set(value)

    @property
    def value(self) -> float:
        """Value of an unlabelled gauge."""
        return self.single().value


class _Distribution(Metric[ChildT]):
    relative_accuracy: float

    def observe(self, value: float) -> None:
        """Observe a value on an unlabelled metric."""
        self.single().observe(value)  # type: ignore[attr-defined]

    def time(self) -> Timer:
        """Time a block on an unlabelled metric."""
        return Timer(self.observe)

    def stats(self, quantiles: Sequence[float] = PERCENTILES) -> Stats:
        """Statistics of an unlabelled metric."""
        stats: Stats = self.single().stats(quantiles)  # type: ignore[attr-defined]
        return stats


class Histogram(_Distribution[HistogramChild]):
    """Observed values in cumulative buckets, with percentiles from a DDSketch."""

    kind = "histogram"
    _reserved = ("le",)

    def __init__(
        self,
        name: str,
        help: str = "",
        labels: Iterable[str] = (),
        *,
        clock: Now,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        relative_accuracy: float = 0.01,
        max_children: int = 10_000,
    ) -> None:
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds or len(set(bounds)) != len(bounds):
            raise ValueError(f"histogram buckets must be distinct numbers, got {buckets!r}")
        self.buckets = tuple(bounds)
        self.relative_accuracy = relative_accuracy
        super().__init__(name, help, labels, clock=clock, max_children=max_children)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self._clock(), self.buckets, self.relative_accuracy)


class Summary(_Distribution[SummaryChild]):
    """Observed values with percentiles over a sliding window of ``max_age`` seconds."""

    kind = "summary"
    _reserved = ("quantile",)

    def __init__(
        self,
        name: str,
        help: str = "",
        labels: Iterable[str] = (),
        *,
        clock: Now,
        max_age: float = 600.0,
        age_buckets: int = 5,
        relative_accuracy: float = 0.01,
        max_children: int = 10_000,
    ) -> None:
        if max_age <= 0 or age_buckets < 1:
            raise ValueError("a summary needs max_age > 0 and age_buckets >= 1")
        self.max_age = max_age
        self.age_buckets = age_buckets
        self.relative_accuracy = relative_accuracy
        super().__init__(name, help, labels, clock=clock, max_children=max_children)

    def _new_child(self) -> SummaryChild:
        return SummaryChild(
            self._clock(), self._clock, self.relative_accuracy, self.max_age, self.age_buckets
        )
