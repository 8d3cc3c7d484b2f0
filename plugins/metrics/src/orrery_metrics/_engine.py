"""The plugin's machinery without the plugin: registry, time series, alerts and a clock.

`MetricsEngine.tick` does whatever is due at a given time (sample into the time series,
clean up, evaluate alerts) and returns the alert notices, so it can be driven by the
plugin's evaluation loop (`_evaluation`) or, deterministically, by a test with a
`orrery.sdk.testing.ManualClock`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orrery.sdk import Clock, SystemClock

from ._alerts import AlertManager, AlertNotice
from ._config import MetricsConfig
from ._registry import MetricsRegistry
from ._state import dump_registry, load_registry
from ._timeseries import SeriesStore

__all__ = ["MetricsEngine"]

_STATE_VERSION = 1


class MetricsEngine:
    """Owns a `MetricsRegistry`, a `SeriesStore` and an `AlertManager` built from config."""

    def __init__(
        self,
        config: MetricsConfig | None = None,
        clock: Clock | None = None,
        *,
        registry: MetricsRegistry | None = None,
    ) -> None:
        self.config = config or MetricsConfig()
        self.clock: Clock = clock if clock is not None else SystemClock()
        if registry is not None and not self.can_adopt(registry, self.config, self.clock):
            raise ValueError("the registry was built with another clock or accuracy")
        self.registry = registry or MetricsRegistry(
            clock=self.clock.now,
            relative_accuracy=self.config.relative_accuracy,
            max_children=self.config.max_children,
        )
        self.store = SeriesStore(
            self.config.retention,
            [tier.tier() for tier in self.config.tiers],
            max_points=self.config.max_points,
            max_series=self.config.max_series,
            relative_accuracy=self.config.relative_accuracy,
        )
        self.alerts = AlertManager(self.registry, self.store, self.config.alerts)
        self._next_scrape: float | None = None
        self._next_evaluation: float | None = None
        self.last_tick: float | None = None

    def scrape(self, now: float) -> None:
        """Sample every series into the store and drop what has aged out."""
        self.store.record(now, self.registry.sample(now))
        self.store.cleanup(now)
        if self.config.series_ttl is not None:
            self.registry.remove_stale(now, self.config.series_ttl)

    def tick(self, now: float | None = None, *, force: bool = False) -> list[AlertNotice]:
        """Scrape and/or evaluate if due at ``now`` (both if ``force``).

        Returns the alert notices to publish.
        """
        now = self.clock.now() if now is None else now
        self.last_tick = now
        if force or self._next_scrape is None or now >= self._next_scrape:
            self.scrape(now)  # before evaluating, so rates see the newest sample
            self._next_scrape = now + self.config.scrape_interval
        notices: list[AlertNotice] = []
        if force or self._next_evaluation is None or now >= self._next_evaluation:
            notices = self.alerts.evaluate(now)
            self._next_evaluation = now + self.config.evaluation_interval
        return notices

    def next_due(self) -> float:
        """When `tick` next has work to do."""
        due = [t for t in (self._next_scrape, self._next_evaluation) if t is not None]
        return min(due) if due else self.clock.now()

    def health(self) -> dict[str, Any]:
        """Counts worth watching, for the plugin's health hook."""
        alerts = self.alerts.alerts()
        return {
            "ok": True,
            "metrics": len(self.registry),
            "series": len(self.store),
            "series_refused": self.store.refused,
            "alerts_firing": sum(a["state"] == "firing" for a in alerts),
            "alerts_pending": sum(a["state"] == "pending" for a in alerts),
            "last_tick": self.last_tick,
        }

    def snapshot(self) -> dict[str, Any]:
        """Metric values, time series and alert states as plain data."""
        return {
            "version": _STATE_VERSION,
            "registry": dump_registry(self.registry),
            "series": self.store.to_dict(),
            "alerts": self.alerts.to_dict(),
        }

    @staticmethod
    def can_adopt(registry: object, config: MetricsConfig, clock: Clock) -> bool:
        """Whether ``registry`` (the previous version's, on a hot reload) can serve an
        engine with ``config``: same class, clock, accuracy and child limit."""
        return (
            isinstance(registry, MetricsRegistry)
            and registry.clock in (clock, clock.now)  # the clock, or its bound method
            and registry.relative_accuracy == config.relative_accuracy
            and registry.max_children == config.max_children
        )

    def restore(self, state: Mapping[str, Any], *, values: bool = True) -> list[str]:
        """Load a `snapshot`; returns names of metrics that could not be restored.

        ``values=False`` leaves the registry alone (it was adopted, values and all).
        """
        if not state:
            return []
        if state.get("version") != _STATE_VERSION:
            return [f"<state version {state.get('version')!r} not understood>"]
        skipped = load_registry(self.registry, state.get("registry", {})) if values else []
        self.store.load(state.get("series", {}))
        self.alerts.load(state.get("alerts", {}))
        return skipped
