"""One refresh's worth of the stack, read through the `sandbox` functions the CLI uses.

Each source is read on its own and may fail on its own (a crashed writer, LocalStack gone): the
page then shows that part as unavailable instead of failing as a whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dashboard.errors import readable
from sandbox.drills import drill
from sandbox.ops import traffic
from sandbox.ops.status import collect
from sandbox.platform.state import StackState
from sandbox.standins import cloudwatch
from sandbox.standins.aurora import events

WINDOW_SECONDS = 120  # what the charts show


@dataclass
class Snapshot:
    taken: float
    status: dict[str, Any] | None  # `sandbox status --json`
    traffic: dict[str, Any] | None  # `sandbox.ops.traffic.stats`
    committed: list[list[int]] | None  # [second, commits] from the writer
    events: list[dict[str, Any]]
    drill: dict[str, Any] | None  # the current or last drill's report
    problems: dict[str, str] = field(default_factory=dict)  # source -> why it could not be read
    depths: list[dict[str, Any]] = field(
        default_factory=list
    )  # `sandbox.standins.cloudwatch.depths`

    def healthy(self, name: str) -> bool:
        components = (self.status or {}).get("components", [])
        return any(c["name"] == name and c["healthy"] for c in components)

    @property
    def background(self) -> float | None:
        """Orders/s of the traffic running now, which a drill would run beside."""
        return traffic.running_rate(self.traffic)

    def depth(self, queue: str) -> dict[str, int] | None:
        """``{"visible", "in_flight"}`` of "queue" or "dlq"; None if SQS did not answer."""
        return ((self.status or {}).get("queues") or {}).get(queue)


def take(state: StackState) -> Snapshot:
    problems: dict[str, str] = {}

    def read(source: str, fetch: Any, default: Any) -> Any:
        try:
            return fetch()
        except Exception as error:
            problems[source] = readable(error)
            return default

    now = time.time()
    return Snapshot(
        taken=now,
        status=read("status", lambda: collect(state), None),
        traffic=read("traffic", lambda: traffic.stats(state), None),
        committed=read(
            "commits", lambda: traffic.committed_per_second(state, WINDOW_SECONDS), None
        ),
        events=read("events", lambda: events.read(state, since=now - WINDOW_SECONDS), []),
        drill=read("drill", lambda: drill.last(state), None),
        depths=read("depth history", lambda: cloudwatch.depths(state, WINDOW_SECONDS, now), []),
        problems=problems,
    )
