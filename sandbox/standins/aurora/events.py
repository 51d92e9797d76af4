"""Cluster events in the style of RDS's (failover started / completed ...), kept where every tool
can read them: one JSON line each in ``<run dir>/events.jsonl``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from sandbox.platform import process
from sandbox.platform.state import StackState

# The RDS event ids the guidance's own demo watches for, and a few of our own for the rest.
CODES = {
    "failover-started": "RDS-EVENT-0073",
    "failover-completed": "RDS-EVENT-0071",
    "writer-crashed": "SANDBOX-CRASH",
    "writer-lost": "SANDBOX-DETECTED",
    "writer-fenced": "SANDBOX-FENCE",
    "writer-restarted": "SANDBOX-RESTART",
    "reader-lost": "SANDBOX-READER-LOST",
    "service-lost": "SANDBOX-SERVICE-LOST",
    "service-restarted": "SANDBOX-SERVICE-RESTART",
    "queue-restored": "SANDBOX-QUEUE-RESTORED",
    "control-plane-started": "SANDBOX-CONTROL-PLANE",
    "fault": "SANDBOX-FAULT",
    "writer-hung": "SANDBOX-HANG",
    "writer-resumed": "SANDBOX-RESUME",
    "writer-stalled": "SANDBOX-LOCK",
    "writer-unstalled": "SANDBOX-UNLOCK",
    "reader-rejoined": "SANDBOX-REJOIN",
    "reader-lagging": "SANDBOX-LAG",
    "proxy-restarted": "SANDBOX-PROXY",
    "consumer-crashed": "SANDBOX-CONSUMER",
    "secret-rotated": "SANDBOX-SECRET",
    "replication-changed": "SANDBOX-REPLICATION",
}


def record(state: StackState, kind: str, message: str, **details: Any) -> dict[str, Any]:
    now = time.time()
    event = {
        "time": datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="milliseconds"),
        "epoch": now,
        "event": kind,
        "code": CODES[kind],
        "message": message,
        **details,
    }
    with state.path("events.jsonl").open("a") as log:
        log.write(json.dumps(event) + "\n")
    return event


def read(state: StackState, since: float = 0.0) -> list[dict[str, Any]]:
    try:
        lines = state.path("events.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:  # cut short: its writer was killed mid-line (a chaos fault)
            continue
    return [event for event in events if event["epoch"] >= since]


def wait_for(
    state: StackState, kinds: tuple[str, ...], since: float, timeout: float
) -> dict[str, Any]:
    """The first event of one of ``kinds`` at or after ``since``, once it has been recorded (by
    this process or another, the control plane's); TimeoutError after ``timeout`` seconds."""
    found: list[dict[str, Any]] = []

    def recorded() -> bool:
        found[:] = [e for e in read(state, since=since) if e["event"] in kinds]
        return bool(found)

    process.wait_until(recorded, timeout=timeout, interval=0.1, what=" or ".join(kinds))
    return found[0]
