"""Queue and DLQ depth over time on the AWS page. SQS only tells the depth now, and CloudWatch
keeps its SQS metrics a minute apart, so each refresh adds a sample. (The local page reads the
stack's own CloudWatch instead: `sandbox.standins.cloudwatch`.)

The samples live in this module (one series per AWS stack), not in a browser session: a reloaded
page or a second tab shows the same history, and two tabs refreshing together add one sample.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from dashboard.snapshot import WINDOW_SECONDS

MIN_GAP_SECONDS = 0.5  # closer samples come from a second tab: one is enough

_lock = threading.Lock()
_series: dict[str, deque[dict[str, Any]]] = {}


def add(series: str, taken: float, depths: tuple[int, int, int]) -> list[dict[str, Any]]:
    """Add (queue visible, queue in flight, DLQ) taken at ``taken`` to ``series``; return the
    window's samples."""
    with _lock:
        samples = _series.setdefault(series, deque())
        fresh = not samples or taken - samples[-1]["time"] >= MIN_GAP_SECONDS
        if fresh:
            visible, in_flight, dlq = depths
            samples.append({"time": taken, "visible": visible, "in flight": in_flight, "DLQ": dlq})
        while samples and samples[0]["time"] < taken - WINDOW_SECONDS:
            samples.popleft()
        return list(samples)
