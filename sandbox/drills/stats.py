"""Percentiles, computed one way for the drills and the benchmarks alike."""

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


def latency(values: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / p99, the usual request-latency cut (in the unit of ``values``)."""
    return {f"p{q}": percentile(values, q) for q in (50, 95, 99)}
