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
    return _latest(state, ("order failed",))


def outcomes(state: StackState) -> dict[str, dict[str, Any]]:
    """The consumer's last word per order id: a failure, or a commit (a duplicate ignored is one
    too). An order whose last word is a failure is still failing: in the queue, its receive
    count climbing, or parked in the DLQ."""
    return _latest(state, ("order failed", "order committed", "duplicate ignored"))


def _latest(state: StackState, messages: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    try:
        lines = state.path("logs", "consumer.log").read_text().splitlines()
    except FileNotFoundError:
        return latest
    for line in lines:
        if any(f'"{message}"' in line for message in messages):
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut short by a process killed mid-write
                continue
            if entry.get("message") in messages and "order_id" in entry:
                latest[entry["order_id"]] = entry
    return latest


def logged_at(entry: dict[str, Any]) -> float:
    """When a log line was written, in epoch seconds (0: unknown)."""
    try:
        return datetime.strptime(entry["timestamp"], TIMESTAMP).timestamp()
    except (KeyError, TypeError, ValueError):
        return 0.0
