"""One number for one series: the statistic alert rules and dashboard widgets ask for."""

from __future__ import annotations

from collections.abc import Mapping

from ._children import Child, CounterChild, GaugeChild, HistogramChild, SummaryChild
from ._stats import STAT_NAMES, percentile_name, quantile_of
from ._timeseries import SeriesKey, SeriesStore

__all__ = ["series_value"]


def series_value(
    metric: str,
    labels: Mapping[str, str],
    child: Child,
    stat: str,
    *,
    store: SeriesStore | None,
    window: float,
    now: float,
) -> float | None:
    """The value of ``stat`` for one series at ``now``; None when it has none.

    ``value`` is a counter's or gauge's current value; ``rate`` is the per-second
    increase over ``window`` (of the count, for distributions); other statistics of a
    counter or gauge are taken over its time series in ``window``, those of a histogram
    or summary from its live sketch.
    """
    scalar = isinstance(child, (CounterChild, GaugeChild))
    if stat == "value":
        return child.value if isinstance(child, (CounterChild, GaugeChild)) else None
    if stat == "rate" or scalar:
        if store is None:
            return None
        key = SeriesKey.of(metric, labels, "value" if scalar else "count")
        if stat == "rate":
            return store.rate(key, window, now)
        return store.aggregate(key, now - window, now).get(stat)
    if not isinstance(child, (HistogramChild, SummaryChild)):
        return None
    if stat in STAT_NAMES:
        return child.stats(()).get(stat)
    q = quantile_of(stat)
    if q is None:
        return None
    return child.stats((q,)).percentiles.get(percentile_name(q))
