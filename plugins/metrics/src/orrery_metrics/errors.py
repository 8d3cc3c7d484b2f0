"""Errors raised by the metrics plugin.

Each error keeps the offending object and says what to do about it.
"""

from __future__ import annotations

from orrery.sdk import OrreryError

__all__ = [
    "CardinalityError",
    "DuplicateMetric",
    "InvalidLabels",
    "InvalidMetricName",
    "InvalidSelector",
    "InvalidRequest",
    "MetricsError",
    "NoSeries",
    "UnknownDashboard",
    "UnknownMetric",
]


class MetricsError(OrreryError):
    """Base class of every error the metrics plugin raises on purpose."""


class InvalidMetricName(MetricsError, ValueError):
    """A metric or label name does not follow the Prometheus naming rules."""

    def __init__(self, name: object, reason: str) -> None:
        super().__init__(
            f"invalid metric or label name {name!r}: {reason}. Use letters, digits and "
            f"underscores, not starting with a digit (e.g. 'http_requests_total')"
        )
        self.name = name
        self.reason = reason


class DuplicateMetric(MetricsError, ValueError):
    """A metric name is already registered with a different type or label names."""

    def __init__(self, name: str, existing: str, wanted: str) -> None:
        super().__init__(
            f"metric {name!r} is already registered as {existing}, not {wanted}; pick "
            f"another name or declare it identically everywhere it is used"
        )
        self.name = name
        self.existing = existing
        self.wanted = wanted


class InvalidLabels(MetricsError, ValueError):
    """``.labels(...)`` was called with label names or values that do not fit the metric."""

    def __init__(self, metric: str, expected: tuple[str, ...], reason: str) -> None:
        names = ", ".join(expected) or "no labels"
        super().__init__(
            f"wrong labels for metric {metric!r}: {reason}; it was declared with {names}"
        )
        self.metric = metric
        self.expected = expected
        self.reason = reason


class CardinalityError(MetricsError):
    """A metric would exceed its maximum number of label combinations."""

    def __init__(self, metric: str, limit: int) -> None:
        super().__init__(
            f"metric {metric!r} already has {limit} label combinations; a label probably "
            f"carries unbounded values (ids, timestamps): drop it, or raise max_children"
        )
        self.metric = metric
        self.limit = limit


class InvalidSelector(MetricsError, ValueError):
    """A series selector such as ``http_requests_total{route="/x"}`` cannot be parsed."""

    def __init__(self, selector: str, reason: str) -> None:
        super().__init__(
            f"invalid selector {selector!r}: {reason}. Write it as in PromQL, e.g. "
            f'http_requests_total{{route="/x", status=~"5.."}}'
        )
        self.selector = selector
        self.reason = reason


class UnknownDashboard(MetricsError, LookupError):
    """No dashboard has the requested name."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"no dashboard named {name!r}; list them with GET /dashboards or define it "
            f"with PUT /dashboards/{name}"
        )
        self.name = name


class UnknownMetric(MetricsError, LookupError):
    """No metric has the requested name."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"no metric named {name!r}; GET /v1/plugins/metrics/export lists them "
            f"(orrery metrics ls)"
        )
        self.name = name


class NoSeries(MetricsError, LookupError):
    """No stored time series matches a selector."""

    def __init__(self, selector: str, stat: str | None) -> None:
        which = f" with stat {stat!r}" if stat else ""
        super().__init__(
            f"no stored series matches {selector!r}{which}; series appear after the first "
            f"scrape (GET /v1/plugins/metrics/series lists them), or pass history=[...]"
        )
        self.selector = selector
        self.stat = stat


class InvalidRequest(MetricsError, ValueError):
    """A request parameter is missing or malformed; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
