"""Summary statistics of repeated measurements, kept free of any stack so they can be
unit-tested; percentiles are the drills' own (`sandbox.drills.stats`)."""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.drills.stats import percentile


def spread(values: Sequence[float]) -> dict[str, float]:
    """min / median / p95 / max: how a repeated measurement (an RTO) varies across trials."""
    return {
        "min": min(values),
        "median": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values),
    }


def rate(count: int, seconds: float) -> float | None:
    """Events per second, or None when nothing measurable happened (no time elapsed)."""
    return count / seconds if seconds > 0 else None


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value`` as a multiple of ``baseline``; None when either side is missing or zero."""
    if value is None or not baseline:
        return None
    return value / baseline
