"""QuantileSketch: batch ingestion that matches ddsketch exactly, within 1% of the truth."""

from __future__ import annotations

import math
import random

import pytest
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping
from hypothesis import given, settings
from hypothesis import strategies as st
from orrery_metrics import RELATIVE_ACCURACY, QuantileSketch

QS = [0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]
# Magnitudes spanning 1e-3..1e9 fit in the 2048 bins, so nothing is collapsed.
magnitude = st.floats(min_value=1e-3, max_value=1e9)
finite = st.one_of(magnitude, magnitude.map(lambda v: -v), st.just(0.0))


def exact_quantile(values: list[float], q: float) -> float:
    """The same rank convention as DDSketch: rank = q * (n - 1), lower element."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@given(st.floats(min_value=1e-300, max_value=1e300))
def test_keys_are_those_of_ddsketch_mapping(value: float) -> None:
    mapping = LogarithmicMapping(RELATIVE_ACCURACY)
    sketch = QuantileSketch()
    sketch.add(value)
    assert sketch.to_dict()["positive"] == {str(mapping.key(value)): 1}


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=300))
def test_quantiles_equal_ddsketch_up_to_clamping(values: list[float]) -> None:
    reference = DDSketch(RELATIVE_ACCURACY)
    for v in values:
        reference.add(v)
    ours = QuantileSketch()
    ours.add_many(values)
    for q, got in zip(QS, ours.quantiles(QS), strict=True):
        expected = reference.get_quantile_value(q)
        assert got is not None and expected is not None
        # Ours clamps the bin's representative value into [min, max]; nothing else differs.
        assert got == pytest.approx(min(max(expected, min(values)), max(values)), rel=1e-12)


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: r.lognormvariate(0, 2),
        lambda r: r.expovariate(1 / 250),
        lambda r: r.gauss(0, 100),
        lambda r: -r.paretovariate(1.5),
    ],
    ids=["lognormal", "exponential", "normal-mixed-sign", "negative-pareto"],
)
def test_relative_error_is_within_one_percent(draw) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    values = [draw(rng) for _ in range(20_000)]
    sketch = QuantileSketch()
    sketch.add_many(values)
    for q in QS:
        got, want = sketch.quantile(q), exact_quantile(values, q)
        assert got is not None
        assert abs(got - want) <= RELATIVE_ACCURACY * abs(want) + 1e-12, (q, got, want)


def test_exact_count_sum_min_max_and_zeros() -> None:
    sketch = QuantileSketch()
    sketch.add_many([0.0, 0.0, -2.0, 5.0, 1e-320])
    assert sketch.count == 5
    assert sketch.zero_count == 3  # subnormal values are indistinguishable from zero
    assert sketch.sum == pytest.approx(3.0)
    assert (sketch.min, sketch.max) == (-2.0, 5.0)
    assert sketch.quantile(0.5) == 0.0


def test_empty_sketch_reports_nothing() -> None:
    sketch = QuantileSketch()
    assert sketch.quantiles([0.5, 0.99]) == [None, None]
    assert sketch.avg is None


def test_merge_equals_one_sketch_of_everything() -> None:
    rng = random.Random(3)
    a_values = [rng.lognormvariate(1, 1) for _ in range(5000)]
    b_values = [-rng.lognormvariate(0, 1) for _ in range(3000)]
    a, b, both = QuantileSketch(), QuantileSketch(), QuantileSketch()
    a.add_many(a_values)
    b.add_many(b_values)
    both.add_many(a_values + b_values)
    a.merge(b)
    assert a.count == both.count
    assert a.quantiles(QS) == both.quantiles(QS)


def test_merge_refuses_other_accuracy() -> None:
    with pytest.raises(ValueError, match="same accuracy"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))


def test_round_trip_through_plain_data() -> None:
    sketch = QuantileSketch()
    sketch.add_many([-3.0, 0.0, 0.5, 7.0, 7.0, 1000.0])
    clone = QuantileSketch.from_dict(sketch.to_dict())
    assert clone.quantiles(QS) == sketch.quantiles(QS)
    assert (clone.count, clone.sum, clone.min, clone.max) == (6, 1011.5, -3.0, 1000.0)


def test_quantile_outside_unit_interval_is_rejected() -> None:
    sketch = QuantileSketch()
    sketch.add(1.0)
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        sketch.quantile(1.5)


def test_memory_is_bounded_and_high_quantiles_stay_accurate() -> None:
    rng = random.Random(11)
    values = [10 ** rng.uniform(-300, 300) for _ in range(20_000)]
    sketch = QuantileSketch()
    sketch.add_many(values)
    data = sketch.to_dict()
    assert len(data["positive"]) <= data["bin_limit"]
    # 600 decades need ~70,000 bins: the lowest collapse, and the top ~17 decades (the
    # upper 3% here) keep their guarantee.
    for q in (0.99, 0.999, 1.0):
        got, want = sketch.quantile(q), exact_quantile(values, q)
        assert got is not None
        assert abs(got - want) <= RELATIVE_ACCURACY * want
