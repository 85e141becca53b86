"""Medians, spreads, ratio intervals and geometric means."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nestctl.bench import stats

positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)


def test_median_of_odd_and_even_counts() -> None:
    assert stats.median([5.0, 1.0, 3.0]) == 3.0
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError, match="no values"):
        stats.median([])


def test_spread_is_the_median_absolute_deviation_and_ignores_one_outlier() -> None:
    assert stats.spread([10.0]) == 0.0
    # median 11, deviations 1, 2, 0, 1, 989 -> 1: one disturbed run does not widen it.
    assert stats.spread([10.0, 9.0, 11.0, 12.0, 1000.0]) == 1.0
    assert stats.relative_spread([10.0, 9.0, 11.0, 12.0, 1000.0]) == pytest.approx(1 / 11)
    assert stats.relative_spread([0.0, 0.0, 0.0]) is None


def test_ratio_interval_takes_the_worst_case_of_both_spreads() -> None:
    assert stats.ratio(20.0, 10.0) == 2.0
    assert stats.ratio(20.0, 0.0) is None
    low, high = stats.ratio_interval(20.0, 2.0, 10.0, 1.0) or (0.0, 0.0)
    assert low == pytest.approx(18.0 / 11.0)
    assert high == pytest.approx(22.0 / 9.0)
    assert stats.ratio_interval(20.0, 2.0, 10.0, 10.0) is None  # the base may be 0


def test_geomean_skips_missing_values() -> None:
    assert stats.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert stats.geomean([2.0, None, 8.0]) == pytest.approx(4.0)
    assert stats.geomean([None, 0.0]) is None
    assert stats.geomean([]) is None


@given(st.lists(positive, min_size=1, max_size=15))
def test_median_and_geomean_lie_between_min_and_max(values: list[float]) -> None:
    assert min(values) <= stats.median(values) <= max(values)
    g = stats.geomean(values)
    assert g is not None
    assert min(values) * (1 - 1e-9) <= g <= max(values) * (1 + 1e-9)
    assert stats.spread(values) <= max(values) - min(values) + 1e-9


@given(positive, positive, positive, positive)
def test_interval_contains_the_ratio(value: float, vs: float, base: float, bs: float) -> None:
    vs, bs = value * (vs % 1.0), base * (bs % 0.99)
    interval = stats.ratio_interval(value, vs, base, bs)
    assert interval is not None
    r = value / base
    assert interval[0] <= r * (1 + 1e-9)
    assert interval[1] >= r * (1 - 1e-9)
    assert not math.isnan(interval[0])
