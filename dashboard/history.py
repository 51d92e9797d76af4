"""Queue and DLQ depth over time. SQS only tells the depth now, so each refresh adds a sample.

The samples live in this module (one series per run dir, or per AWS stack), not in a browser
session: a reloaded page or a second tab shows the same history, and two tabs refreshing together
add one sample.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from dashboard.snapshot import WINDOW_SECONDS, Snapshot

MIN_GAP_SECONDS = 0.5  # closer samples come from a second tab: one is enough

_lock = threading.Lock()
_series: dict[str, deque[dict[str, Any]]] = {}


def record(run_dir: str, snapshot: Snapshot) -> list[dict[str, Any]]:
    """Add this snapshot's depths (if SQS answered) and return the window's samples."""
    queue, dlq = snapshot.depth("queue"), snapshot.depth("dlq")
    if queue is None or dlq is None:
        return add(run_dir, snapshot.taken, None)  # still trims the window
    depths = (queue["visible"], queue["in_flight"], dlq["visible"] + dlq["in_flight"])
    return add(run_dir, snapshot.taken, depths)


def add(series: str, taken: float, depths: tuple[int, int, int] | None) -> list[dict[str, Any]]:
    """Add (queue visible, queue in flight, DLQ) taken at ``taken`` to ``series``, unless None;
    return the window's samples. The local page keys its series by run dir, the AWS page by
    stack."""
    with _lock:
        samples = _series.setdefault(series, deque())
        fresh = not samples or taken - samples[-1]["time"] >= MIN_GAP_SECONDS
        if depths is not None and fresh:
            visible, in_flight, dlq = depths
            samples.append({"time": taken, "visible": visible, "in flight": in_flight, "DLQ": dlq})
        while samples and samples[0]["time"] < taken - WINDOW_SECONDS:
            samples.popleft()
        return list(samples)
