"""Aggregated statistics of a distribution and the names used to pick one of them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ._sketch import QuantileSketch

__all__ = [
    "PERCENTILES",
    "STAT_NAMES",
    "Stats",
    "percentile_name",
    "quantile_of",
]

#: The percentiles every distribution reports.
PERCENTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)
#: Statistic names understood by `Stats.get` besides any ``pNN`` percentile.
STAT_NAMES = ("count", "sum", "min", "max", "avg")

_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?|100)")


def percentile_name(q: float) -> str:
    """``0.5 -> "p50"``, ``0.999 -> "p99.9"``."""
    return f"p{q * 100:g}"


def quantile_of(stat: str) -> float | None:
    """The quantile a ``pNN`` name stands for (``"p99" -> 0.99``), or None."""
    match = _PERCENTILE.fullmatch(stat)
    return float(match.group(1)) / 100 if match else None


@dataclass(frozen=True, slots=True)
class Stats:
    """count / sum / min / max / avg and percentiles of a set of values.

    Percentiles come from a DDSketch and are within its relative accuracy (1% by
    default) of the exact value; count, sum, min and max are exact.
    """

    count: int
    sum: float
    min: float | None
    max: float | None
    avg: float | None
    percentiles: Mapping[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        sketch: QuantileSketch,
        quantiles: Sequence[float] = PERCENTILES,
        *,
        count: int | None = None,
        total: float | None = None,
    ) -> Stats:
        """Stats of ``sketch``; ``count``/``total`` override its count and sum."""
        values = sketch.quantiles(quantiles)
        empty = sketch.count == 0
        return cls(
            count=sketch.count if count is None else count,
            sum=sketch.sum if total is None else total,
            min=None if empty else sketch.min,
            max=None if empty else sketch.max,
            avg=sketch.avg,
            percentiles={percentile_name(q): v for q, v in zip(quantiles, values, strict=True)},
        )

    def get(self, stat: str) -> float | None:
        """One statistic by name: ``count``, ``sum``, ``min``, ``max``, ``avg`` or ``pNN``."""
        if stat in STAT_NAMES:
            value: float | None = getattr(self, stat)
            return value
        if stat in self.percentiles:
            return self.percentiles[stat]
        raise KeyError(
            f"unknown statistic {stat!r}; use one of {', '.join(STAT_NAMES)} or "
            f"{', '.join(self.percentiles)}"
        )

    def as_dict(self) -> dict[str, float | None]:
        """Flat mapping of every statistic, e.g. for JSON export."""
        out: dict[str, float | None] = {
            "count": self.count,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "avg": self.avg,
        }
        out.update(self.percentiles)
        return out
