"""Holt linear forecasts: levels, trends, time to a threshold."""

from __future__ import annotations

import random

import pytest
from orrery_metrics import HoltForecaster


def test_a_straight_line_is_learned() -> None:
    model = HoltForecaster.fit((60.0 * i, 10 + 0.5 * i) for i in range(50))
    assert model.trend == pytest.approx(0.5 / 60)
    assert model.forecast(600) == pytest.approx(10 + 0.5 * 49 + 5)
    assert model.time_to_reach(50) == pytest.approx((50 - 34.5) * 120)


def test_noisy_growth_crossing_time_within_ten_percent() -> None:
    rng = random.Random(4)
    # Memory at 40% growing 1% a minute, noisy: 80% is reached 40 minutes after t=0.
    points = [(60.0 * i, 0.40 + 0.01 * i + rng.gauss(0, 0.005)) for i in range(20)]
    model = HoltForecaster.fit(points, alpha=0.3, beta=0.1)
    eta = model.time_to_reach(0.80)
    assert eta is not None
    assert 19 * 60 + eta == pytest.approx(40 * 60, rel=0.10)


def test_irregular_sampling_keeps_the_trend_per_second() -> None:
    times = [0.0, 5.0, 30.0, 31.0, 90.0, 200.0, 201.0, 400.0]
    model = HoltForecaster.fit((t, 3.0 * t) for t in times)
    assert model.trend == pytest.approx(3.0)


@pytest.mark.parametrize(("threshold", "expected"), [(0.0, None), (100.0, 0.0)])
def test_threshold_behind_or_at_the_level(threshold: float, expected: float | None) -> None:
    model = HoltForecaster.fit([(0.0, 90.0), (10.0, 100.0)])
    assert model.time_to_reach(threshold) == expected


def test_not_ready_until_two_distinct_times() -> None:
    model = HoltForecaster()
    assert model.forecast(10) is None and model.time_to_reach(1) is None
    model.update(5.0, 1.0)
    model.update(5.0, 2.0)  # same instant: no slope yet
    assert not model.ready
    model.update(6.0, 3.0)
    assert model.ready


def test_flat_series_never_reaches_anything() -> None:
    model = HoltForecaster.fit((float(t), 5.0) for t in range(10))
    assert model.time_to_reach(6.0) is None


def test_bad_smoothing_is_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        HoltForecaster(alpha=0)
