"""The consumer function's log (its CloudWatch Logs, locally ``logs/consumer.log``): what failed.

SQS does not keep why a message failed, nor does it say which receive that was; the consumer
logs both ("order failed", with the order id, the error and the receive count), as a Lambda
function's failures land in CloudWatch Logs. The DLQ view joins them to what is parked by order
id, and the SQS stand-in's restore reads them to know what was parked or on its way there.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox.platform.state import StackState

#: Powertools' timestamp: "2026-12-07 08:07:36,728+0000".
TIMESTAMP = "%Y-%m-%d %H:%M:%S,%f%z"


#: The consumer's words that settle an order (it is in the table) and the one that does not.
SETTLED = ("order committed", "duplicate ignored")
FAILED = "order failed"


def failures(state: StackState) -> dict[str, dict[str, Any]]:
    """The orders whose last word in the consumer's log is a failure, with that failure (its
    receive count, error and time): still failing, their receive count climbing in the queue,
    or parked in the DLQ. An order committed since has left it."""
    path = state.path("logs", "consumer.log")
    with _lock:
        reader = _readers.setdefault(path, _Reader())
        return dict(reader.read_on(path))


@dataclass
class _Reader:
    """The log read so far: where it stopped, and what was still failing there.

    The log grows all the stack's life (100 MB in a 30-minute soak at 30 orders/s): read whole
    at each look it cost the control plane 300 MiB at a restore and the dashboard a second
    every few seconds. Each look reads only what was written since, line by line, and what
    it keeps is bounded by the orders failing at once, not by the orders ever sent."""

    inode: int = 0
    offset: int = 0
    failing: dict[str, dict[str, Any]] = field(default_factory=dict)

    def read_on(self, path: Path) -> dict[str, dict[str, Any]]:
        try:
            log = path.open("rb")
        except FileNotFoundError:
            return {}
        with log:
            seen = os.fstat(log.fileno())
            if seen.st_ino != self.inode or seen.st_size < self.offset:  # a new log
                self.inode, self.offset, self.failing = seen.st_ino, 0, {}
            log.seek(self.offset)
            for line in log:
                if not line.endswith(b"\n"):
                    break  # being written: read whole at the next look
                self.offset += len(line)
                self._take(line)
        return self.failing

    def _take(self, line: bytes) -> None:
        if b'"order_id"' not in line or not any(word in line for word in _QUOTED):
            return
        try:
            entry = json.loads(line)
        except ValueError:  # a line cut short by a process killed mid-write
            return
        order = entry.get("order_id")
        if entry.get("message") == FAILED and order:
            self.failing[order] = entry
        elif entry.get("message") in SETTLED:
            self.failing.pop(order, None)


_QUOTED = tuple(f'"{word}"'.encode() for word in (FAILED, *SETTLED))  # as in a JSON line
_readers: dict[Path, _Reader] = {}
_lock = threading.Lock()


def logged_at(entry: dict[str, Any]) -> float:
    """When a log line was written, in epoch seconds (0: unknown)."""
    try:
        return datetime.strptime(entry["timestamp"], TIMESTAMP).timestamp()
    except (KeyError, TypeError, ValueError):
        return 0.0
