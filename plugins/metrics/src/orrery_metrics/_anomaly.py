"""Streaming anomaly detectors, one instance per series.

Each detector scores a new value against the recent past, in units of spread (standard
deviations, or scaled median absolute deviations for MAD), and flags it when the score
exceeds ``4 / sensitivity``. Sensitivity 1 (4 spreads: about 1 in 16,000 Gaussian
samples) suits alerting, 2 halves the threshold (more alerts), 0.5 doubles it (fewer).
A flagged value enters the history clipped to the threshold, so one spike neither hides
the next nor drags the baseline. A lasting level shift is learned: after ``relearn``
consecutive flagged values on the same side of the expectation, the detector takes
those values as its new history. Clipping alone cannot do that when the history had no
spread (a constant series): the clip bound is then the old level itself, the baseline
never moves and an alert on the series would fire forever.

`score` judges a value without learning from it, for one-off checks ("is 340 unusual
for this series?"); `update` judges it and then learns.
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

    def score(self, value: float) -> Detection:
        """Score ``value`` against what was learned so far, without learning it."""
        ...


class _ShiftWatch:
    """Raw values of consecutive flagged samples on one side of the expectation; once
    there are ``needed`` of them they are a level shift, not a run of outliers."""

    def __init__(self, needed: int) -> None:
        self.needed = max(1, needed)
        self._side = 0
        self._values: list[float] = []

    def see(self, value: float, expected: float, anomaly: bool) -> list[float] | None:
        """The values of the new level when ``value`` completes a shift, else None."""
        side = (value > expected) - (value < expected)
        if not anomaly or side == 0:
            self._side, self._values = 0, []
            return None
        if side != self._side:
            self._side, self._values = side, []
        self._values.append(value)
        if len(self._values) < self.needed:
            return None
        shifted, self._side, self._values = self._values, 0, []
        return shifted


class _WindowDetector:
    """What the rolling-window detectors share: score, learn a lasting shift as the new
    window, else add the value clipped to the band (so one outlier moves the baseline
    only a little). Subclasses keep the window and say how to forget and clip."""

    _shift: _ShiftWatch

    def score(self, value: float) -> Detection:
        raise NotImplementedError

    def _push(self, value: float) -> None:
        raise NotImplementedError

    def _forget(self) -> None:
        raise NotImplementedError

    def _clip(self, value: float) -> float:
        raise NotImplementedError

    def update(self, value: float) -> Detection:
        """Score ``value``, then add it (clipped) to the window."""
        found = self.score(value)
        if found.expected is None:
            self._push(value)
            return found
        shifted = self._shift.see(value, found.expected, found.anomaly)
        if shifted is not None:
            self._forget()
            for raw in shifted:
                self._push(raw)
            return found
        self._push(self._clip(value) if found.anomaly else value)
        return found


class ZScoreDetector(_WindowDetector):
    """Distance from the rolling mean in rolling standard deviations."""

    def __init__(
        self, window: int = 60, sensitivity: float = 1.0, warmup: int = 10, relearn: int = 10
    ) -> None:
        self.threshold = 4.0 / sensitivity
        self.warmup = max(2, min(warmup, window))
        self._values: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self._sumsq = 0.0
        self._shift = _ShiftWatch(min(relearn, window))

    def _spread(self) -> tuple[float, float]:
        n = len(self._values)
        mean = self._sum / n
        return mean, math.sqrt(max(self._sumsq / n - mean * mean, 0.0))

    def score(self, value: float) -> Detection:
        """Distance of ``value`` from the window's mean; nothing is learned."""
        if len(self._values) < self.warmup:
            return Detection(False, 0.0, None)
        mean, std = self._spread()
        score = abs(value - mean) / std if std > 0 else (0.0 if value == mean else math.inf)
        return Detection(score > self.threshold, score, mean)

    def _forget(self) -> None:
        self._values.clear()
        self._sum = self._sumsq = 0.0

    def _clip(self, value: float) -> float:
        mean, std = self._spread()
        bound = self.threshold * std
        return min(max(value, mean - bound), mean + bound)

    def _push(self, value: float) -> None:
        values = self._values
        if len(values) == values.maxlen:
            old = values[0]
            self._sum -= old
            self._sumsq -= old * old
        values.append(value)
        self._sum += value
        self._sumsq += value * value


class MADDetector(_WindowDetector):
    """Modified z-score: distance from the rolling median in median absolute deviations.

    Robust to the outliers it looks for, unlike mean and standard deviation.
    """

    # 0.6745 makes the MAD of a normal distribution comparable to its standard deviation.
    _SCALE = 0.6745

    def __init__(
        self, window: int = 60, sensitivity: float = 1.0, warmup: int = 10, relearn: int = 10
    ) -> None:
        self.threshold = 4.0 / sensitivity
        self.warmup = max(3, min(warmup, window))
        self._values: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []
        self._shift = _ShiftWatch(min(relearn, window))

    def _spread(self) -> tuple[float, float]:
        median = _median(self._sorted)
        return median, _median(sorted(abs(v - median) for v in self._sorted))

    def score(self, value: float) -> Detection:
        """Modified z-score of ``value`` against the window; nothing is learned."""
        if len(self._values) < self.warmup:
            return Detection(False, 0.0, None)
        median, mad = self._spread()
        if mad > 0:
            score = self._SCALE * abs(value - median) / mad
        else:
            score = 0.0 if value == median else math.inf
        return Detection(score > self.threshold, score, median)

    def _forget(self) -> None:
        self._values.clear()
        self._sorted.clear()

    def _clip(self, value: float) -> float:
        median, mad = self._spread()
        if mad == 0:
            return value
        bound = self.threshold * mad / self._SCALE
        return min(max(value, median - bound), median + bound)

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

    def __init__(
        self, alpha: float = 0.1, sensitivity: float = 1.0, warmup: int = 10, relearn: int = 10
    ) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be within (0, 1], got {alpha!r}")
        self.threshold = 4.0 / sensitivity
        self.alpha = alpha
        self.warmup = max(2, warmup)
        self._n = 0
        self._mean = 0.0
        self._var = 0.0
        self._shift = _ShiftWatch(relearn)

    def score(self, value: float) -> Detection:
        """Distance of ``value`` from the EW mean; nothing is learned."""
        # The next update would be sample number n + 1: warming up until it passes warmup.
        if self._n + 1 <= self.warmup:
            return Detection(False, 0.0, None)
        mean, std = self._mean, math.sqrt(self._var)
        score = abs(value - mean) / std if std > 0 else (0.0 if value == mean else math.inf)
        return Detection(score > self.threshold, score, mean)

    def update(self, value: float) -> Detection:
        """Score ``value``, then fold it (clipped) into the mean and variance."""
        if self._n == 0:
            self._n, self._mean = 1, value
            return Detection(False, 0.0, None)
        found = self.score(value)
        self._n += 1
        mean, std = self._mean, math.sqrt(self._var)
        if found.expected is not None:
            shifted = self._shift.see(value, mean, found.anomaly)
            if shifted is not None:
                level = sum(shifted) / len(shifted)
                self._mean = level
                self._var = sum((v - level) ** 2 for v in shifted) / len(shifted)
                return found
            if found.anomaly:
                bound = self.threshold * std
                value = min(max(value, mean - bound), mean + bound)
        # West's incremental EW variance.
        diff = value - mean
        incr = self.alpha * diff
        self._mean = mean + incr
        self._var = (1 - self.alpha) * (self._var + diff * incr)
        return found


def make_detector(
    method: Method,
    *,
    sensitivity: float = 1.0,
    window: int = 60,
    alpha: float = 0.1,
    warmup: int = 10,
    relearn: int = 10,
) -> Detector:
    """A fresh detector of the given kind."""
    if sensitivity <= 0:
        raise ValueError(f"sensitivity must be positive, got {sensitivity!r}")
    if relearn < 1:
        raise ValueError(f"relearn must be at least 1 sample, got {relearn!r}")
    if method == "zscore":
        return ZScoreDetector(window, sensitivity, warmup, relearn)
    if method == "mad":
        return MADDetector(window, sensitivity, warmup, relearn)
    if method == "ewma":
        return EWMADetector(alpha, sensitivity, warmup, relearn)
    raise ValueError(f"unknown anomaly method {method!r}; use zscore, mad or ewma")
