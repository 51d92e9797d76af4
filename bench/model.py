"""What a benchmark section reports: figures (with their same-run baselines) and spreads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Tick = Callable[[str, int, int], None]  # progress from any thread: (phase, done, total)


@dataclass
class Figure:
    """One measured number, with how it compares with this run's baselines.

    ``versus`` maps a baseline's name to value / baseline, so the reader sees at once what the
    sandbox's own machinery costs over the emulator or server underneath it.
    """

    name: str
    value: float | None
    unit: str
    versus: dict[str, float | None] = field(default_factory=dict)
    baseline: bool = False
    note: str = ""


@dataclass
class Spread:
    """A measurement repeated over trials (the RTO): min / median / p95 / max, in ``unit``."""

    name: str
    unit: str
    values: dict[str, float]
    trials: int


@dataclass
class Section:
    """One of the measurements (`bench.run.SECTIONS`); ``error`` says why if it failed (the others
    still run)."""

    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    spreads: list[Spread] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str = ""
