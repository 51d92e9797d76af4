"""Summary statistics, kept free of any stack so they can be unit-tested."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile, interpolating between closest ranks.

    Interpolation (numpy's default) rather than nearest rank: with 10 failover trials a nearest-rank
    p95 would just be the maximum, and the table would show the same number twice.
    """
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: Sequence[float]) -> dict[str, float]:
    """min / median / p95 / max: how a repeated measurement (an RTO) varies across trials."""
    return {
        "min": min(values),
        "median": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values),
    }


def latency(values: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / p99, the usual request-latency cut (in the unit of ``values``)."""
    return {f"p{q}": percentile(values, q) for q in (50, 95, 99)}


def rate(count: int, seconds: float) -> float | None:
    """Events per second, or None when nothing measurable happened (no time elapsed)."""
    return count / seconds if seconds > 0 else None


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value`` as a multiple of ``baseline``; None when either side is missing or zero."""
    if value is None or not baseline:
        return None
    return value / baseline
