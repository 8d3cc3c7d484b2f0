"""The plugin's configuration, section ``[plugins.metrics]``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._dashboards import Dashboard
from ._rules import AlertRule
from ._timeseries import DEFAULT_TIERS, Tier

__all__ = ["MetricsConfig", "TierConfig"]


class TierConfig(BaseModel):
    """A downsampling level: one bucket per ``resolution`` s, kept ``retention`` s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Seconds each bucket covers.
    resolution: float = Field(gt=0)
    #: Seconds buckets of this level are kept.
    retention: float = Field(gt=0)

    def tier(self) -> Tier:
        """As the time series store's type."""
        return Tier(self.resolution, self.retention)


class MetricsConfig(BaseModel):
    """Settings of the metrics plugin."""

    model_config = ConfigDict(extra="forbid")

    #: Seconds raw samples are kept.
    retention: float = Field(default=3_600.0, gt=0)
    #: Downsampled levels kept beyond ``retention``.
    tiers: list[TierConfig] = Field(
        default_factory=lambda: [
            TierConfig(resolution=t.resolution, retention=t.retention) for t in DEFAULT_TIERS
        ]
    )
    #: Seconds between samples of every series into the time series store.
    scrape_interval: float = Field(default=15.0, gt=0)
    #: Seconds between alert rule evaluations.
    evaluation_interval: float = Field(default=15.0, gt=0)
    #: Drop labelled series whose value has not changed for this many seconds.
    series_ttl: float | None = Field(default=None, gt=0)
    #: Label combinations allowed per metric (guards against unbounded labels).
    max_children: int = Field(default=10_000, ge=1)
    #: Series the time series store holds at most.
    max_series: int = Field(default=100_000, ge=1)
    #: Raw points kept per series at most, whatever the retention.
    max_points: int = Field(default=4_096, ge=2)
    #: Relative error of every percentile.
    relative_accuracy: float = Field(default=0.01, gt=0, lt=1)
    #: Count kernel events (``orrery.>``): plugin states, per-prefix rates, durations.
    instrument_kernel: bool = True
    #: Alerting rules.
    alerts: list[AlertRule] = Field(default_factory=list)
    #: Dashboards defined in the config (more can be saved through the HTTP API).
    dashboards: list[Dashboard] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> MetricsConfig:
        if self.retention < self.scrape_interval:
            raise ValueError(
                f"retention ({self.retention:g}s) is shorter than scrape_interval "
                f"({self.scrape_interval:g}s): no sample would survive"
            )
        names = [rule.name for rule in self.alerts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"alert rule names must be unique; repeated: {duplicates}")
        return self
