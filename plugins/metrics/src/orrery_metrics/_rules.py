"""Alert rule definitions, validated with pydantic (they come from the plugin config).

A rule selects series with a PromQL-style selector and fires per series, like a
Prometheus alerting rule::

    [[plugins.metrics.alerts]]
    name = "HighErrorRate"
    expr = 'http_requests_total{status=~"5.."}'
    stat = "rate"
    op = ">"
    threshold = 5
    for = 120

Three kinds: *threshold* (the statistic compares true), *predictive* (``predict_within``:
a Holt forecast reaches the threshold within that many seconds) and *anomaly*
(``anomaly``: a detector flags the latest sample).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._anomaly import Method
from ._selector import Selector
from ._stats import STAT_NAMES, quantile_of

__all__ = ["COMPARISONS", "AlertRule", "AnomalySpec", "Comparison"]

Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class AnomalySpec(BaseModel):
    """Which detector an anomaly rule runs per series, and how eagerly it flags."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Detector: zscore (mean and standard deviation), mad (median, robust), ewma.
    method: Method = "zscore"
    #: 1 flags values 4 spreads away; 2 halves that threshold, 0.5 doubles it.
    sensitivity: float = Field(default=1.0, gt=0)
    #: Samples of history (zscore, mad).
    window: int = Field(default=60, ge=5)
    #: Smoothing factor (ewma).
    alpha: float = Field(default=0.1, gt=0, le=1)
    #: Samples seen before anything is flagged.
    warmup: int = Field(default=10, ge=2)
    #: Consecutive flagged samples on one side after which they are the new level: a
    #: lasting shift is learned (and its alert resolves) instead of firing forever.
    relearn: int = Field(default=10, ge=1)


class AlertRule(BaseModel):
    """One alerting rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: Unique name, the ``alertname`` label of its alerts.
    name: str = Field(min_length=1)
    #: Series selector, e.g. ``'http_latency_seconds{route="/x"}'``.
    expr: str
    #: ``value`` (counter, gauge), ``count`` / ``sum`` / ``min`` / ``max`` / ``avg`` /
    #: ``pNN`` (histogram, summary), or ``rate`` (per-second increase over ``window``).
    stat: str = "value"
    #: Seconds of history for ``rate``, and for other statistics of counters and gauges.
    window: float = Field(default=300.0, gt=0)
    #: How the statistic is compared with ``threshold``.
    op: Comparison = ">"
    #: The value the statistic is compared with (not used by anomaly rules).
    threshold: float | None = None
    #: Seconds the condition must hold before the alert fires (pending until then).
    for_: float = Field(default=0.0, alias="for", ge=0)
    #: Predictive rule: fire when the forecast reaches the threshold within this many s.
    predict_within: float | None = Field(default=None, gt=0)
    #: Forecast smoothing (predictive rules).
    forecast_alpha: float = Field(default=0.5, gt=0, le=1)
    #: Trend smoothing (predictive rules).
    forecast_beta: float = Field(default=0.3, gt=0, le=1)
    #: Anomaly rule: flag samples the detector finds unusual (threshold not used).
    anomaly: AnomalySpec | None = None
    #: ``severity`` label of its alerts (e.g. warning, critical).
    severity: str = "warning"
    #: Extra labels on the alert.
    labels: dict[str, str] = Field(default_factory=dict)
    #: Text fields; ``{value}``, ``{threshold}`` and series labels are substituted.
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("expr")
    @classmethod
    def _check_expr(cls, expr: str) -> str:
        Selector.parse(expr)
        return expr

    @field_validator("stat")
    @classmethod
    def _check_stat(cls, stat: str) -> str:
        if stat in ("value", "rate", *STAT_NAMES) or quantile_of(stat) is not None:
            return stat
        raise ValueError(
            f"unknown stat {stat!r}; use value, rate, {', '.join(STAT_NAMES)} or pNN (p99)"
        )

    @model_validator(mode="after")
    def _check_kind(self) -> AlertRule:
        if self.anomaly is not None and self.predict_within is not None:
            raise ValueError("a rule is either predictive or anomaly-based, not both")
        if self.anomaly is None and self.threshold is None:
            raise ValueError("threshold is required unless the rule has an anomaly detector")
        if self.predict_within is not None and self.op in ("==", "!="):
            raise ValueError("a predictive rule needs op >, >=, < or <=")
        return self

    @property
    def kind(self) -> Literal["threshold", "predictive", "anomaly"]:
        """Which of the three kinds of rule this is."""
        if self.anomaly is not None:
            return "anomaly"
        if self.predict_within is not None:
            return "predictive"
        return "threshold"

    @cached_property
    def selector(self) -> Selector:
        """The parsed ``expr`` (parsed once: rules are evaluated every interval)."""
        return Selector.parse(self.expr)

    def compare(self, value: float) -> bool:
        """Whether ``value`` meets the rule's threshold condition."""
        assert self.threshold is not None
        return COMPARISONS[self.op](value, self.threshold)
