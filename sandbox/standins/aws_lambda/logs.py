"""The consumer function's log (its CloudWatch Logs, locally ``logs/consumer.log``): what failed.

SQS does not keep why a message failed, nor does it say which receive that was; the consumer
logs both ("order failed", with the order id, the error and the receive count), as a Lambda
function's failures land in CloudWatch Logs. The DLQ view joins them to what is parked by order
id, and the SQS stand-in's restore reads them to know what was parked or on its way there.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sandbox.platform.state import StackState

#: Powertools' timestamp: "2026-12-07 08:07:36,728+0000".
TIMESTAMP = "%Y-%m-%d %H:%M:%S,%f%z"


def failures(state: StackState) -> dict[str, dict[str, Any]]:
    """The consumer's last failure per order id: its receive count, error and time."""
    latest: dict[str, dict[str, Any]] = {}
    try:
        lines = state.path("logs", "consumer.log").read_text().splitlines()
    except FileNotFoundError:
        return latest
    for line in lines:
        if '"order failed"' in line:
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut short by a process killed mid-write
                continue
            latest[entry["order_id"]] = entry
    return latest


def logged_at(entry: dict[str, Any]) -> float:
    """When a log line was written, in epoch seconds (0: unknown)."""
    try:
        return datetime.strptime(entry["timestamp"], TIMESTAMP).timestamp()
    except (KeyError, TypeError, ValueError):
        return 0.0
