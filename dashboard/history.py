"""Queue and DLQ depth over time. SQS only tells the depth now, so each refresh adds a sample.

The samples live in this module (one series per run dir), not in a browser session: a reloaded
page or a second tab shows the same history, and two tabs refreshing together add one sample.
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
    with _lock:
        samples = _series.setdefault(run_dir, deque())
        fresh = not samples or snapshot.taken - samples[-1]["time"] >= MIN_GAP_SECONDS
        if queue is not None and dlq is not None and fresh:
            samples.append(
                {
                    "time": snapshot.taken,
                    "visible": queue["visible"],
                    "in flight": queue["in_flight"],
                    "DLQ": dlq["visible"] + dlq["in_flight"],
                }
            )
        while samples and samples[0]["time"] < snapshot.taken - WINDOW_SECONDS:
            samples.popleft()
        return list(samples)
