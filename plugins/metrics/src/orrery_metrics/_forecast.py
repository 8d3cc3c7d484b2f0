"""Holt's linear (double exponential) smoothing for forecasts and predictive alerts.

Samples may arrive at irregular times, so the trend is kept per second and a forecast
``h`` seconds ahead is ``level + trend * h``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["HoltForecaster"]


class HoltForecaster:
    """Level and trend of one series, updated one sample at a time.

    ``alpha`` weighs new values against the predicted level, ``beta`` new slopes against
    the smoothed trend; larger values follow changes faster and noise more.
    """

    def __init__(self, alpha: float = 0.5, beta: float = 0.3) -> None:
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be within (0, 1], got {value!r}")
        self.alpha = alpha
        self.beta = beta
        self.level = 0.0
        #: Change per second.
        self.trend = 0.0
        self.last_t: float | None = None
        self.samples = 0

    @classmethod
    def fit(
        cls, points: Iterable[tuple[float, float]], alpha: float = 0.5, beta: float = 0.3
    ) -> HoltForecaster:
        """A forecaster fed ``(t, value)`` points in time order."""
        model = cls(alpha, beta)
        for t, value in points:
            model.update(t, value)
        return model

    @property
    def ready(self) -> bool:
        """Whether there is a trend yet (at least two samples at different times)."""
        return self.samples >= 2

    def update(self, t: float, value: float) -> None:
        """Learn from the value observed at time ``t``."""
        last_t = self.last_t
        if last_t is None:
            self.level, self.last_t, self.samples = value, t, 1
            return
        dt = t - last_t
        if dt <= 0:  # same instant (or a clock step back): only the level can learn
            self.level = self.alpha * value + (1 - self.alpha) * self.level
            return
        if self.samples == 1:
            self.trend = (value - self.level) / dt
            self.level = value
        else:
            level = self.alpha * value + (1 - self.alpha) * (self.level + self.trend * dt)
            self.trend = self.beta * (level - self.level) / dt + (1 - self.beta) * self.trend
            self.level = level
        self.last_t = t
        self.samples += 1

    def forecast(self, horizon: float) -> float | None:
        """Expected value ``horizon`` seconds after the last sample; None until ready."""
        return self.level + self.trend * horizon if self.ready else None

    def time_to_reach(self, threshold: float) -> float | None:
        """Seconds after the last sample until the forecast reaches ``threshold``.

        0 when the level is already there; None when the trend points away (or is flat)
        or the model is not ready.
        """
        if not self.ready:
            return None
        gap = threshold - self.level
        if gap == 0:
            return 0.0
        if self.trend == 0 or (gap > 0) != (self.trend > 0):
            return None
        return gap / self.trend
