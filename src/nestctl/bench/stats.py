"""Statistics over repeated runs: medians, spreads, ratio intervals and geometric means.

The spread is the median absolute deviation (MAD): robust to the one run a noisy neighbour
disturbed, in the unit of the median. A ratio's interval takes the worst case of both spreads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def spread(values: Sequence[float]) -> float:
    """Median absolute deviation from the median (0 for a single run)."""
    centre = median(values)
    return median([abs(v - centre) for v in values])


def relative_spread(values: Sequence[float]) -> float | None:
    """The spread as a fraction of the median; None when the median is 0."""
    centre = median(values)
    return spread(values) / centre if centre else None


def ratio(value: float, base: float) -> float | None:
    return value / base if base > 0 and value >= 0 else None


def ratio_interval(
    value: float, value_spread: float, base: float, base_spread: float
) -> tuple[float, float] | None:
    """Bounds of value/base when each may be off by its spread; None when base's may reach 0."""
    low_base, high_base = base - base_spread, base + base_spread
    if low_base <= 0 or high_base <= 0:
        return None
    return max(value - value_spread, 0.0) / high_base, (value + value_spread) / low_base


def geomean(values: Iterable[float | None]) -> float | None:
    """Geometric mean of the positive values given (None ones skipped); None when none are left."""
    logs = [math.log(v) for v in values if v is not None and v > 0]
    if not logs:
        return None
    return math.exp(sum(logs) / len(logs))
