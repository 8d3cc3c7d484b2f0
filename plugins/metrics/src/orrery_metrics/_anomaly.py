"""Streaming anomaly detectors, one instance per series.

Each detector scores a new value against the recent past, in units of spread (standard
deviations, or scaled median absolute deviations for MAD), and flags it when the score
exceeds ``4 / sensitivity``. Sensitivity 1 (4 spreads: about 1 in 16,000 Gaussian
samples) suits alerting, 2 halves the threshold (more alerts), 0.5 doubles it (fewer).
A flagged value enters the history clipped to the threshold, so one spike neither hides
the next nor drags the baseline, while a lasting level shift is still learned.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from typing import Literal, NamedTuple, Protocol

__all__ = [
    "Detection",
    "Detector",
    "EWMADetector",
    "MADDetector",
    "Method",
    "ZScoreDetector",
    "make_detector",
]

Method = Literal["zscore", "mad", "ewma"]


class Detection(NamedTuple):
    """The verdict on one value."""

    anomaly: bool
    #: How far the value is from the expectation, in the detector's unit of spread.
    score: float
    #: What the detector expected (mean or median); None while warming up.
    expected: float | None


class Detector(Protocol):
    """Scores each new value of one series."""

    threshold: float

    def update(self, value: float) -> Detection:
        """Score ``value``, then learn from it."""
        ...


class ZScoreDetector:
    """Distance from the rolling mean in rolling standard deviations."""

    def __init__(self, window: int = 60, sensitivity: float = 1.0, warmup: int = 10) -> None:
        self.threshold = 4.0 / sensitivity
        self.warmup = max(2, min(warmup, window))
        self._values: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self._sumsq = 0.0

    def update(self, value: float) -> Detection:
        """Score ``value``, then add it (clipped) to the window."""
        n = len(self._values)
        if n < self.warmup:
            self._push(value)
            return Detection(False, 0.0, None)
        mean = self._sum / n
        std = math.sqrt(max(self._sumsq / n - mean * mean, 0.0))
        score = abs(value - mean) / std if std > 0 else (0.0 if value == mean else math.inf)
        anomaly = score > self.threshold
        if anomaly:
            bound = self.threshold * std
            value = min(max(value, mean - bound), mean + bound)
        self._push(value)
        return Detection(anomaly, score, mean)

    def _push(self, value: float) -> None:
        values = self._values
        if len(values) == values.maxlen:
            old = values[0]
            self._sum -= old
            self._sumsq -= old * old
        values.append(value)
        self._sum += value
        self._sumsq += value * value


class MADDetector:
    """Modified z-score: distance from the rolling median in median absolute deviations.

    Robust to the outliers it looks for, unlike mean and standard deviation.
    """

    # 0.6745 makes the MAD of a normal distribution comparable to its standard deviation.
    _SCALE = 0.6745

    def __init__(self, window: int = 60, sensitivity: float = 1.0, warmup: int = 10) -> None:
        self.threshold = 4.0 / sensitivity
        self.warmup = max(3, min(warmup, window))
        self._values: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []

    def update(self, value: float) -> Detection:
        """Score ``value``, then add it (clipped) to the window."""
        if len(self._values) < self.warmup:
            self._push(value)
            return Detection(False, 0.0, None)
        median = _median(self._sorted)
        mad = _median(sorted(abs(v - median) for v in self._sorted))
        if mad > 0:
            score = self._SCALE * abs(value - median) / mad
        else:
            score = 0.0 if value == median else math.inf
        anomaly = score > self.threshold
        if anomaly and mad > 0:
            bound = self.threshold * mad / self._SCALE
            value = min(max(value, median - bound), median + bound)
        self._push(value)
        return Detection(anomaly, score, median)

    def _push(self, value: float) -> None:
        values = self._values
        if len(values) == values.maxlen:
            old = values[0]
            del self._sorted[bisect_left(self._sorted, old)]
        values.append(value)
        insort(self._sorted, value)


def _median(ordered: list[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


class EWMADetector:
    """Distance from an exponentially weighted mean, in EW standard deviations.

    Needs no window: ``alpha`` sets how fast the baseline follows the series.
    """

    def __init__(self, alpha: float = 0.1, sensitivity: float = 1.0, warmup: int = 10) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be within (0, 1], got {alpha!r}")
        self.threshold = 4.0 / sensitivity
        self.alpha = alpha
        self.warmup = max(2, warmup)
        self._n = 0
        self._mean = 0.0
        self._var = 0.0

    def update(self, value: float) -> Detection:
        """Score ``value``, then fold it (clipped) into the mean and variance."""
        self._n += 1
        if self._n == 1:
            self._mean = value
            return Detection(False, 0.0, None)
        mean, std = self._mean, math.sqrt(self._var)
        warming = self._n <= self.warmup
        score = abs(value - mean) / std if std > 0 else (0.0 if value == mean else math.inf)
        anomaly = not warming and score > self.threshold
        if anomaly:
            bound = self.threshold * std
            value = min(max(value, mean - bound), mean + bound)
        # West's incremental EW variance.
        diff = value - mean
        incr = self.alpha * diff
        self._mean = mean + incr
        self._var = (1 - self.alpha) * (self._var + diff * incr)
        return Detection(anomaly, 0.0 if warming else score, None if warming else mean)


def make_detector(
    method: Method,
    *,
    sensitivity: float = 1.0,
    window: int = 60,
    alpha: float = 0.1,
    warmup: int = 10,
) -> Detector:
    """A fresh detector of the given kind."""
    if sensitivity <= 0:
        raise ValueError(f"sensitivity must be positive, got {sensitivity!r}")
    if method == "zscore":
        return ZScoreDetector(window, sensitivity, warmup)
    if method == "mad":
        return MADDetector(window, sensitivity, warmup)
    if method == "ewma":
        return EWMADetector(alpha, sensitivity, warmup)
    raise ValueError(f"unknown anomaly method {method!r}; use zscore, mad or ewma")
