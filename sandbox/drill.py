"""Drills: send traffic, inject a fault mid-stream, let things settle, and account for every write.

The drill keeps its own ledger of every request and the answer it got, then reconciles it against
the database (read from the writer), the queue and the DLQ. Each acknowledged write is committed
once, committed more than once, parked in the DLQ, still queued, or lost; requests that got no
acknowledgement are counted apart (on the direct path, they are what a client without a retry
loop loses).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sandbox import database, dlq, events, failover, faults, stack
from sandbox.load import Sent, send_orders
from sandbox.queue import depth
from sandbox.state import StackState

Fault = Literal[
    "none", "crash", "switchover", "hang", "long-outage", "proxy-restart", "consumer-crash"
]
FAULTS = ("none", "crash", "switchover", "hang", "long-outage", "proxy-restart", "consumer-crash")
PATHS = {"queue": "/orders", "direct": "/direct/orders"}


@dataclass
class PathReport:
    path: str
    sent: int
    accepted: int
    client_errors: int
    errors_from_s: float | None  # first and last failed answer, seconds after the fault
    errors_to_s: float | None
    committed_once: int
    duplicates: int
    in_dlq: int
    queued: int
    lost: int
    rpo_seconds: float  # how far back before the fault the lost acknowledged writes reach
    errored_but_committed: int
    latency_ms: dict[str, float]  # accepted -> committed

    @property
    def balanced(self) -> bool:
        """The accounting adds up: nothing acknowledged is unexplained."""
        placed = self.committed_once + self.duplicates + self.in_dlq + self.queued + self.lost
        return self.accepted + self.client_errors == self.sent and placed == self.accepted


@dataclass
class DrillReport:
    fault: str
    count: int
    rate: float
    replication: str
    started: float
    fault_at: float | None
    recovered_at: float | None
    rto_seconds: float | None  # fault -> first commit on the (new) writer
    peak_queue_depth: int
    drain_seconds: float | None  # end of traffic (or recovery) -> queue empty
    redriven: int
    paths: list[PathReport]
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


Progress = Callable[[str, dict[str, Any]], None]


def run(
    state: StackState,
    fault: str = "crash",
    path: str = "queue",
    count: int = 1000,
    rate: float = 100,
    outage: float | None = None,
    redrive: bool = True,
    settle_timeout: float | None = None,
    progress: Progress | None = None,
) -> DrillReport:
    """Run one drill and return its report (also saved as the run dir's ``drill.json``)."""
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
    paths = list(PATHS) if path == "both" else [path]
    if any(p not in PATHS for p in paths):
        raise ValueError("path must be queue, direct or both")
    if count < 1 or rate <= 0:
        raise ValueError("count must be >= 1 and rate > 0")
    say = progress or (lambda step, info: None)
    prefix = f"drill-{uuid.uuid4().hex[:6]}"
    started = time.time()
    _save(state, {"status": "running", "fault": fault, "count": count, "started": started})
    sampler = _Sampler(state)
    sampler.start()
    ledgers: dict[str, list[Sent]] = {p: [] for p in paths}
    senders = [
        threading.Thread(
            target=lambda p=p: ledgers[p].extend(
                send_orders(
                    state,
                    count,
                    rate,
                    prefix=f"{prefix}-{p}",
                    path=PATHS[p],
                    progress=lambda sent, p=p: say("sent", {"path": p, "status": sent.status}),
                )
            )
        )
        for p in paths
    ]
    for sender in senders:
        sender.start()
    time.sleep(count / rate / 3)  # the fault lands a third of the way through the traffic
    fault_at, recovered_at = _inject(state, fault, outage, say)
    for sender in senders:
        sender.join()
    traffic_done = time.time()
    say("settling", {})
    budget = settle_timeout or max(60.0, count / rate * 2)
    drained_at = _settle(state, prefix, budget)
    redriven = 0
    if redrive and stack.queued(state)[1] and "queue" in paths:
        say("redriving", {})
        redriven, _ = dlq.redrive(state)
        drained_at = _settle(state, prefix, budget)
    sampler.stop()
    rows = _committed(state, prefix)
    parked = {p.order_id for p in dlq.peek(state)}
    in_queue = stack.queued(state)[0]
    report = DrillReport(
        fault=fault,
        count=count,
        rate=rate,
        replication=state.replication,
        started=started,
        fault_at=fault_at,
        recovered_at=recovered_at,
        rto_seconds=_rto(state, prefix, fault_at, recovered_at),
        peak_queue_depth=sampler.peak,
        drain_seconds=None
        if drained_at is None
        else round(drained_at - max(traffic_done, recovered_at or 0), 3),
        redriven=redriven,
        paths=[_account(p, ledgers[p], rows, parked, in_queue, fault_at) for p in paths],
        events=events.read(state, since=started),
    )
    _save(state, {"status": "done"} | asdict(report))
    return report


def _inject(state: StackState, fault: str, outage: float | None, say: Progress):
    say("fault", {"fault": fault})
    at = time.time()
    if fault in ("crash", "switchover", "hang"):
        default = 5.0 if fault == "hang" else 0.0
        done = failover.failover(state, fault, outage if outage is not None else default)
        return at, done.completed
    if fault == "long-outage":
        # Longer than the retry budget: every message in the queue runs out of receives.
        budget = (state.queue.visibility_timeout_seconds + 1) * state.queue.max_receive_count
        wait = outage if outage is not None else budget + 5
        done = failover.failover(state, "crash", wait, hold=False)  # clients fail fast meanwhile
        return at, done.completed
    if fault == "proxy-restart":
        faults.proxy_restart(state)
        return at, time.time()
    if fault == "consumer-crash":
        faults.consumer_crash(state)
        return at, time.time()
    return None, None


def _settle(state: StackState, prefix: str, timeout: float) -> float | None:
    """Until the queue is empty and commits have stopped; returns when, or None at the bound."""
    deadline = time.monotonic() + timeout
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        committed = len(_committed(state, prefix))
        if committed != last:
            last, stable_since = committed, time.monotonic()
        if stack.queued(state)[0] == 0 and time.monotonic() - stable_since > 1.0:
            return time.time() - (time.monotonic() - stable_since)
        time.sleep(0.25)
    return None


def _committed(state: StackState, prefix: str) -> dict[str, tuple[float, float, int]]:
    """order id -> (accepted_at, first committed_at, rows), read from the writer."""
    with database.connect(state, state.writer.name) as conn:
        return {
            row[0]: (row[1], row[2], row[3])
            for row in conn.execute(
                "SELECT order_id, min(EXTRACT(EPOCH FROM accepted_at))::float8, "
                "min(EXTRACT(EPOCH FROM committed_at))::float8, count(*) "
                "FROM orders WHERE order_id LIKE %s GROUP BY order_id",
                (f"{prefix}%",),
            )
        }


def _rto(state: StackState, prefix: str, fault_at: float | None, recovered_at: float | None):
    if fault_at is None:
        return None
    with database.connect(state, state.writer.name) as conn:
        first = conn.execute(
            "SELECT min(EXTRACT(EPOCH FROM committed_at)::float8) FROM orders "
            "WHERE order_id LIKE %s AND committed_at >= to_timestamp(%s)",
            (f"{prefix}%", recovered_at or fault_at),
        ).fetchone()[0]
    return None if first is None else round(first - fault_at, 3)


def _account(
    path: str,
    ledger: list[Sent],
    rows: dict,
    parked: set[str],
    in_queue: int,
    fault_at: float | None,
) -> PathReport:
    acked = [s for s in ledger if s.accepted]
    errors = [s for s in ledger if not s.accepted]
    committed = [s for s in acked if s.order_id in rows]
    duplicated = [s for s in committed if rows[s.order_id][2] > 1]
    in_dlq = [s for s in acked if s.order_id not in rows and s.order_id in parked]
    unplaced = [s for s in acked if s.order_id not in rows and s.order_id not in parked]
    queued = unplaced[: in_queue if path == "queue" else 0]
    lost = unplaced[len(queued) :]
    origin = fault_at or (ledger[0].sent_at if ledger else 0)
    latencies = sorted((rows[s.order_id][1] - rows[s.order_id][0]) * 1000 for s in committed)
    return PathReport(
        path=path,
        sent=len(ledger),
        accepted=len(acked),
        client_errors=len(errors),
        errors_from_s=round(min(s.answered_at for s in errors) - origin, 3) if errors else None,
        errors_to_s=round(max(s.answered_at for s in errors) - origin, 3) if errors else None,
        committed_once=len(committed) - len(duplicated),
        duplicates=len(duplicated),
        in_dlq=len(in_dlq),
        queued=len(queued),
        lost=len(lost),
        rpo_seconds=round(max(0.0, origin - min(s.answered_at for s in lost)), 3) if lost else 0.0,
        errored_but_committed=sum(1 for s in errors if s.order_id in rows),
        latency_ms=_percentiles(latencies),
    )


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    cuts = (
        statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    )
    return {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "p99": round(cuts[98], 1)}


class _Sampler(threading.Thread):
    """Queue depth every quarter second, for the peak (and the dashboard's chart)."""

    def __init__(self, state: StackState) -> None:
        super().__init__(daemon=True)
        self.state = state
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        sqs = stack.localstack.client(self.state, "sqs")
        while not self.done.wait(0.25):
            try:
                self.peak = max(self.peak, depth(sqs, self.state.queue_url).total)
            except Exception:
                continue

    def stop(self) -> None:
        self.done.set()
        self.join()


def _save(state: StackState, report: dict[str, Any]) -> None:
    target = state.path("drill.json")
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(target)


def last(state: StackState) -> dict[str, Any] | None:
    """The current or last drill's report, as the dashboard shows it."""
    try:
        return json.loads(state.path("drill.json").read_text())
    except FileNotFoundError:
        return None
