"""Anomaly detectors on synthetic series with injected anomalies: precision and recall."""

from __future__ import annotations

import math
import random

import pytest
from orrery_metrics import EWMADetector, MADDetector, ZScoreDetector, make_detector

N_POINTS = 5_000
N_ANOMALIES = 50
NOISE = 2.0
SEEDS = range(5)


def synthetic(seed: int) -> tuple[list[float], set[int]]:
    """A slow daily-like wave plus Gaussian noise, with spikes of 6-10 noise deviations."""
    rng = random.Random(seed)
    values = [
        100 + 10 * math.sin(2 * math.pi * i / 500) + rng.gauss(0, NOISE) for i in range(N_POINTS)
    ]
    injected: set[int] = set()
    while len(injected) < N_ANOMALIES:
        i = rng.randrange(100, N_POINTS)
        if all(abs(i - j) > 20 for j in injected):
            injected.add(i)
    for i in injected:
        values[i] += rng.choice((-1, 1)) * rng.uniform(6, 10) * NOISE
    return values, injected


def score(method: str, sensitivity: float) -> tuple[float, float]:
    """Precision and recall over every seed."""
    hits = false_alarms = total = 0
    for seed in SEEDS:
        values, injected = synthetic(seed)
        detector = make_detector(method, sensitivity=sensitivity)  # type: ignore[arg-type]
        flagged = {i for i, v in enumerate(values) if detector.update(v).anomaly}
        hits += len(flagged & injected)
        false_alarms += len(flagged - injected)
        total += len(injected)
    return hits / max(1, hits + false_alarms), hits / total


# Stated minimums at the default sensitivity (measured: zscore 0.97/0.90,
# mad 0.92/0.90, ewma 0.93/0.99 for precision/recall).
@pytest.mark.parametrize(
    ("method", "min_precision", "min_recall"),
    [("zscore", 0.90, 0.85), ("mad", 0.85, 0.85), ("ewma", 0.85, 0.90)],
)
def test_precision_and_recall_on_injected_spikes(
    method: str, min_precision: float, min_recall: float
) -> None:
    precision, recall = score(method, 1.0)
    print(f"{method}: precision={precision:.3f} recall={recall:.3f}")
    assert precision >= min_precision
    assert recall >= min_recall


@pytest.mark.parametrize("method", ["zscore", "mad", "ewma"])
def test_higher_sensitivity_trades_precision_for_recall(method: str) -> None:
    calm, eager = score(method, 0.75), score(method, 1.5)
    print(f"{method}: sensitivity 0.75 -> {calm}, 1.5 -> {eager}")
    assert eager[1] >= calm[1]  # recall
    assert eager[0] <= calm[0]  # precision


@pytest.mark.parametrize(
    "detector",
    [ZScoreDetector(window=20), MADDetector(window=20), EWMADetector(alpha=0.2)],
    ids=["zscore", "mad", "ewma"],
)
def test_nothing_is_flagged_while_warming_up(detector: ZScoreDetector) -> None:
    verdicts = [detector.update(v) for v in (1.0, 1000.0, -1000.0, 5.0)]
    assert not any(v.anomaly for v in verdicts)
    assert verdicts[0].expected is None


def test_constant_series_flags_any_change() -> None:
    detector = ZScoreDetector(window=20, warmup=5)
    for _ in range(10):
        assert not detector.update(7.0).anomaly
    verdict = detector.update(7.5)
    assert verdict.anomaly and verdict.expected == 7.0


def test_one_spike_does_not_hide_the_next() -> None:
    detector = ZScoreDetector(window=30)
    rng = random.Random(1)
    flags = []
    for i in range(200):
        value = 50 + rng.gauss(0, 1) + (30 if i in (100, 103) else 0)
        flags.append(detector.update(value).anomaly)
    assert flags[100] and flags[103]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="sensitivity"):
        make_detector("zscore", sensitivity=0)
    with pytest.raises(ValueError, match="unknown anomaly method"):
        make_detector("magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        EWMADetector(alpha=1.5)


@pytest.mark.parametrize("method", ["zscore", "mad", "ewma"])
def test_a_lasting_shift_of_a_constant_series_is_learned(method: str) -> None:
    # Zero spread: clipping a flagged value to the baseline would pin the baseline at
    # the old level, and every later sample would be flagged forever.
    detector = make_detector(method, warmup=5, relearn=5)  # type: ignore[arg-type]
    for _ in range(30):
        assert not detector.update(10.0).anomaly
    flags = [detector.update(20.0).anomaly for _ in range(20)]
    assert flags[0], "the shift itself is an anomaly"
    assert flags[:5] == [True] * 5
    assert not any(flags[5:]), f"the new level was never learned: {flags}"
    assert detector.score(20.0).expected == pytest.approx(20.0)
    assert detector.score(10.0).anomaly  # the old level is now the unusual one


@pytest.mark.parametrize("method", ["zscore", "mad", "ewma"])
def test_a_run_of_alternating_spikes_is_not_taken_for_a_shift(method: str) -> None:
    detector = make_detector(method, warmup=5, relearn=3)  # type: ignore[arg-type]
    rng = random.Random(3)
    for _ in range(60):
        detector.update(50 + rng.gauss(0, 1))
    verdicts = [detector.update(v) for v in (90.0, 10.0, 90.0, 10.0, 90.0, 10.0)]
    assert all(v.anomaly for v in verdicts[:4])
    # Never three on one side: the baseline stays where the series lives.
    assert all(abs((v.expected or 0) - 50) < 5 for v in verdicts)


@pytest.mark.parametrize("method", ["zscore", "mad", "ewma"])
def test_score_judges_without_learning(method: str) -> None:
    detector = make_detector(method, warmup=5)  # type: ignore[arg-type]
    rng = random.Random(2)
    for _ in range(50):
        detector.update(100 + rng.gauss(0, 1))
    before = detector.score(100.0)
    for _ in range(50):
        assert detector.score(500.0).anomaly
    assert detector.score(100.0) == before
