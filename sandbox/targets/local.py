"""The local sandbox as a drill target: its own failover, faults, queue, DLQ and database."""

from __future__ import annotations

import time
from typing import Any

from sandbox import database, dlq, events, failover, faults, localstack
from sandbox.load import Api
from sandbox.queue import depth
from sandbox.state import StackState
from sandbox.targets import Commit

COMMITTED = (
    "SELECT order_id, min(EXTRACT(EPOCH FROM accepted_at))::float8, "
    "min(EXTRACT(EPOCH FROM committed_at))::float8, count(*) "
    "FROM orders WHERE order_id LIKE %s GROUP BY order_id"
)


class LocalTarget:
    """Every fault is possible here, and the database is read directly, with timestamps."""

    name = "local"
    paths = ("queue", "direct")
    poll_seconds = 0.25
    quiet_seconds = 1.0
    notes: tuple[str, ...] = ()

    def __init__(self, state: StackState) -> None:
        self.state = state
        # One client for every depth read: the sampler polls four times a second.
        self._sqs = localstack.client(state, "sqs")

    @property
    def replication(self) -> str:
        """Read when asked: a test may switch it between drills."""
        return self.state.replication

    def check(self, fault: str, outage: float | None) -> None:
        """Every fault and any outage can be injected locally: nothing to refuse."""

    def api(self) -> Api:
        return Api.local(self.state)

    def inject(self, fault: str, outage: float | None) -> tuple[float, float]:
        state = self.state
        at = time.time()
        if fault in ("crash", "switchover", "hang"):
            default = 5.0 if fault == "hang" else 0.0
            done = failover.failover(state, fault, outage if outage is not None else default)
            return at, done.completed
        if fault == "long-outage":
            # Past the retry budget: until every queued message has run out of receives (or a
            # fixed outage, if one was asked for). Without hold, clients fail fast meanwhile.
            wait = outage if outage is not None else faults.retry_budget_spent(state)
            done = failover.failover(state, "crash", wait, hold=False)
            return at, done.completed
        if fault == "lagging-crash":
            # The reader falls behind for the outage (default 3 s), then the writer crashes: the
            # fault's moment is the crash; the writes it can cost are those of the lag before it.
            lag = outage if outage is not None else 3.0
            done = failover.failover(state, "crash", 0.0, lag=lag)
            return done.started, done.completed
        if fault == "proxy-restart":
            faults.proxy_restart(state)
            return at, time.time()
        if fault == "consumer-crash":
            faults.consumer_crash(state)
            return at, time.time()
        raise ValueError(f"unknown fault {fault!r}")

    def depth(self) -> int:
        return depth(self._sqs, self.state.queue_url).total

    def dlq_depth(self) -> int:
        return depth(self._sqs, self.state.dlq_url).total

    def committed(self, prefix: str) -> dict[str, Commit]:
        """From the writer itself (not the proxy), so a paused proxy cannot hide a commit."""
        with database.connect(self.state, self.state.writer.name) as conn:
            return {
                order_id: Commit(rows=rows, accepted_at=accepted, committed_at=committed)
                for order_id, accepted, committed, rows in conn.execute(COMMITTED, (f"{prefix}%",))
            }

    def parked(self) -> set[str]:
        return {parked.order_id for parked in dlq.peek(self.state)}

    def redrive(self) -> int:
        moved, _ = dlq.redrive(self.state)
        return moved

    def events(self, since: float) -> list[dict[str, Any]]:
        return events.read(self.state, since=since)
