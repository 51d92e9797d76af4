"""Drills: send traffic, inject a fault mid-stream, let things settle, and account for every write.

The drill keeps its own ledger of every request and the answer it got, then reconciles it against
the database (read from the writer), the queue and the DLQ. Each acknowledged write is committed
once, committed more than once, parked in the DLQ, still queued, or lost; requests that got no
acknowledgement are counted apart (on the direct path, they are what a client without a retry
loop loses).

Only the environment's steps differ between the local sandbox and a deployed stack; they sit
behind `sandbox.drills.targets.Target`. Everything that decides what the numbers mean is here, once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.drills import stats
from sandbox.drills.targets import Commit, Target
from sandbox.ops import faults, traffic
from sandbox.ops.load import PATIENT, ClientPolicy, Sent, send_orders
from sandbox.platform.state import StackState
from sandbox.spec.choices import FAULTS, PATHS, words


def background_rate(state: StackState) -> float | None:
    """Orders/s of the background traffic running now (`sandbox traffic start`, the dashboard's
    button), or None. A drill over it says so: its account counts only its own orders, but the
    queue's depth counts the traffic's too."""
    return traffic.running_rate(traffic.stats(state))


def faults_on(runtime: str) -> tuple[str, ...]:
    """The faults a local stack of this runtime can take: partitions need Compose's network."""
    return tuple(name for name in FAULTS if faults.refusal(name, runtime) is None)


#: Each write path's route on the API.
ROUTES = {"queue": "/orders", "direct": "/direct/orders"}


@dataclass(frozen=True)
class Demo:
    """`make demo` (`sandbox demo`): the guidance's own demo at a workshop's length.

    Its demo sends 3,000 requests 0.05 s apart, each with a 5 s client timeout and no retry,
    during a real Aurora failover ("typically less than 60 seconds, and often less than 30").
    Here: the same client and spacing, 900 requests per path (45 s, short enough to watch
    whole), the writer crashed a third of the way in and out for 20 s before promotion: long
    enough that the direct path's held requests outlast the client's 5 s and fail, as they do
    on AWS, on any machine."""

    fault: str = "crash"
    path: str = "both"
    count: int = 900
    rate: float = 20.0
    outage: float = 20.0
    #: One request every 0.05 s, each on its own: through the outage up to 100 wait at once
    #: (20/s for the 5 s the client waits), so the client must let that many wait.
    client: ClientPolicy = field(
        default_factory=lambda: ClientPolicy(timeout=5.0, retries=0, in_flight=120)
    )


DEMO = Demo()
#: The least bound on settling: a bound, not a wait (settling ends as soon as the queue is empty
#: and every acknowledged order has committed); it only keeps a stuck queue from hanging a drill.
SETTLE_BOUND_SECONDS = 600.0


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
    client_wait_ms: dict[str, float] = field(default_factory=dict)  # sent -> answered (acked)
    retried: int = 0  # requests the client had to send more than once
    rows_written: int = 0  # the path's rows in the table, a duplicate counted twice
    unexpected: int = 0  # the path's orders in the table that no request of the ledger sent

    @property
    def guidance_check(self) -> bool:
        """The guidance demo's own check, rows written + DLQ >= requests, on the same run.
        Weaker than this account: it counts rows, not orders, so a duplicate row hides a lost
        order, and it never says which order is missing."""
        return self.rows_written + self.in_dlq >= self.sent

    @property
    def balanced(self) -> bool:
        """The account covers the table, not only the ledger: every row of this path's orders
        is a request the drill made and counted. (Each request is placed once by construction,
        so the counts above always add up to ``sent``; this is the check they cannot make: an
        answer the ledger dropped, or a row nobody asked for, shows here.)"""
        return self.unexpected == 0


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
    target: str = "local"
    notes: list[str] = field(default_factory=list)  # what this target could not measure, and why
    prefix: str = ""  # every order id of this drill starts with it
    detection_seconds: float | None = None  # fault -> the control plane saw it (its event)
    failover_seconds: float | None = None  # RDS-EVENT-0073 -> RDS-EVENT-0071
    client: ClientPolicy = PATIENT  # how the drill's client waits
    background_rate: float | None = None  # orders/s of background traffic when it started

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
    client: ClientPolicy = PATIENT,
    background: float | None = None,
) -> DrillReport:
    """Run one drill on the local stack; the report is also saved as the run dir's drill.json.
    ``background``: the rate of the traffic beside it, if the caller read it already (and said
    so): else read here."""
    from sandbox.drills.targets.local import LocalTarget  # psycopg and boto3: not at `--help`

    background = background_rate(state) if background is None else background
    return run_on(
        LocalTarget(state),
        fault,
        path,
        count,
        rate,
        outage,
        redrive,
        settle_timeout,
        progress,
        record=lambda report: _save(state, report),
        client=client,
        background=background,
    )


def run_on(
    target: Target,
    fault: str = "crash",
    path: str = "queue",
    count: int = 1000,
    rate: float = 100,
    outage: float | None = None,
    redrive: bool = True,
    settle_timeout: float | None = None,
    progress: Progress | None = None,
    record: Callable[[dict[str, Any]], None] | None = None,
    client: ClientPolicy = PATIENT,
    background: float | None = None,
) -> DrillReport:
    """Run one drill on any target; ``record`` gets the status as it starts, then the report.
    ``client``: the timeout and retries of every request the drill sends; ``background``: the
    rate of other traffic running beside it (`background_rate`), said in the report."""
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
    if path not in PATHS:
        raise ValueError(f"path must be {words(PATHS)}")
    if count < 1 or rate <= 0:
        raise ValueError("count must be >= 1 and rate > 0")
    target.check(fault, outage)  # refused before a single order is sent
    paths = _paths(target, path)
    if fault == "long-outage" and "queue" not in paths:
        raise ValueError("long-outage outlasts the queue's retry budget: it needs the queue path")
    if fault == "lock-stall" and outage is None and "queue" not in paths:
        raise ValueError(
            "lock-stall lasts until the consumer times out on an insert: it needs the queue "
            "path, or a fixed --outage"
        )
    api = target.api()
    say = progress or (lambda step, info: None)
    say("paths", {"paths": paths})  # "both" may be one path on a target without the direct one
    save = record or (lambda report: None)
    prefix = f"drill-{uuid.uuid4().hex[:6]}"
    started = time.time()
    save({"status": "running", "fault": fault, "count": count, "started": started})
    sampler = _Sampler(target)
    sampler.start()
    cancel = threading.Event()  # stops the senders if the drill itself fails
    # The last two thirds of the traffic wait until the fault has begun (the target says when),
    # so they meet the fault however long it takes to start on this machine.
    begun = threading.Event()
    third = -(-count // 3)
    senders: list[threading.Thread] = []
    try:
        ledgers: dict[str, list[Sent]] = {p: [] for p in paths}
        tally = _Tally(paths)

        def sent(p: str, answer: Sent) -> None:
            tally.add(p)
            say("sent", {"path": p, "status": answer.status})

        senders = [
            threading.Thread(
                name=f"drill-sender-{p}",
                target=lambda p=p: ledgers[p].extend(
                    send_orders(
                        api,
                        count,
                        rate,
                        prefix=f"{prefix}-{p}",
                        path=ROUTES[p],
                        progress=lambda answer, p=p: sent(p, answer),
                        cancel=cancel,
                        hold=(third, begun) if fault != "none" else None,
                        policy=client,
                    )
                ),
            )
            for p in paths
        ]
        for sender in senders:
            sender.start()
        tally.wait_for_a_third(count, senders)  # the fault lands a third of the way through
        say("fault", {"fault": fault})
        try:
            fault_at, recovered_at = (
                (None, None)
                if fault == "none"
                else target.inject(fault, outage, prefix, begun=begun.set)
            )
        finally:
            begun.set()  # a target that never said so: the rest goes once the fault is over
        for sender in senders:
            sender.join()
        traffic_done = time.time()
        say("settling", {})
        budget = settle_timeout or max(SETTLE_BOUND_SECONDS, count / rate * 2)
        acked = {s.order_id for ledger in ledgers.values() for s in ledger if s.accepted}
        drained_at = settle(target, prefix, budget, acked)
        redriven = 0
        if redrive and "queue" in paths and target.dlq_depth():
            say("redriving", {})
            redriven = target.redrive()
            drained_at = settle(target, prefix, budget, acked)
        sampler.stop()
        rows = target.committed(prefix)
        parked = target.parked()
        in_queue = target.depth()
        seen = target.events(started)
        report = DrillReport(
            fault=fault,
            count=count,
            rate=rate,
            replication=target.replication,
            started=started,
            fault_at=fault_at,
            recovered_at=recovered_at,
            rto_seconds=_rto(rows, fault_at, recovered_at),
            peak_queue_depth=sampler.peak,
            drain_seconds=None
            if drained_at is None
            else round(drained_at - max(traffic_done, recovered_at or 0), 3),
            redriven=redriven,
            paths=[
                account(p, ledgers[p], rows, parked, in_queue, fault_at, f"{prefix}-{p}-")
                for p in paths
            ],
            events=seen,
            target=target.name,
            notes=[
                *target.notes,
                *_unsettled(drained_at, budget, in_queue),
                *_beside(background),
            ],
            prefix=prefix,
            detection_seconds=_detection(seen, fault_at),
            failover_seconds=_failover_seconds(seen, fault_at),
            client=client,
            background_rate=background,
        )
    except BaseException as error:
        cancel.set()
        for sender in senders:
            if sender.is_alive():
                sender.join()
        # A drill that died must not look "running" forever on the dashboard's scoreboard.
        save(
            {
                "status": "failed",
                "fault": fault,
                "count": count,
                "started": started,
                "error": str(error) or type(error).__name__,
            }
        )
        raise
    finally:
        sampler.stop()
    save({"status": "done"} | asdict(report))
    return report


def _unsettled(drained_at: float | None, budget: float, in_queue: int) -> list[str]:
    """Said in the report when the bound passed first: then "still queued" is a count."""
    if drained_at is not None:
        return []
    return [
        f"the queue had not settled after {budget:.0f} s: 'still queued' is the queue's depth "
        f"({in_queue}) set against the unplaced orders, not matched by id; run the drill again "
        "to account for them one by one"
    ]


def _beside(background: float | None) -> list[str]:
    """Said in the report when background traffic ran beside the drill."""
    if background is None:
        return []
    return [
        f"background traffic ({background:g} orders/s) was running when the drill started: the "
        "peak queue depth includes its orders; the account above counts the drill's own only"
    ]


def _paths(target: Target, path: str) -> list[str]:
    """``both`` means every path the target has; a missing path asked for by name is refused."""
    if path == "both":
        return [p for p in ROUTES if p in target.paths]
    if path not in target.paths:
        raise ValueError(f"{target.name} has no {path} path")
    return [path]


def settle(target: Target, prefix: str, timeout: float, acked: set[str]) -> float | None:
    """Until the queue is empty and every acknowledged order has committed; returns when, or
    None at the bound.

    When some never commit (parked, or lost with an asynchronous writer), nothing positive ends
    the wait: then the queue empty and the commits unchanged for the target's quiet time do.
    """
    deadline = time.monotonic() + timeout
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        committed = target.committed(prefix)
        if len(committed) != last:
            last, stable_since = len(committed), time.monotonic()
        quiet = time.monotonic() - stable_since
        if target.depth() == 0:
            if acked <= committed.keys():
                return time.time() - quiet
            if quiet > target.quiet_seconds:
                return time.time() - quiet
        time.sleep(target.poll_seconds)
    return None


#: The control plane's events that say it noticed a fault it was not told about.
DETECTED = ("writer-lost", "reader-lost", "service-lost")


def _detection(events: list[dict[str, Any]], fault_at: float | None) -> float | None:
    """Fault -> the control plane's first "lost" event after it; None if it noticed nothing."""
    if fault_at is None:
        return None
    noticed = [e["epoch"] for e in events if e["event"] in DETECTED and e["epoch"] >= fault_at]
    return round(min(noticed) - fault_at, 3) if noticed else None


def _failover_seconds(events: list[dict[str, Any]], fault_at: float | None) -> float | None:
    """The first failover after the fault, started -> completed (RDS-EVENT-0073 -> 0071)."""
    if fault_at is None:
        return None
    after = [e for e in events if e["epoch"] >= fault_at]
    started = next((e["epoch"] for e in after if e["event"] == "failover-started"), None)
    done = next((e["epoch"] for e in after if e["event"] == "failover-completed"), None)
    return round(done - started, 3) if started is not None and done is not None else None


def _rto(
    rows: dict[str, Commit], fault_at: float | None, recovered_at: float | None
) -> float | None:
    """Fault -> the first commit at or after recovery; None without a fault or commit times."""
    if fault_at is None:
        return None
    since = recovered_at or fault_at
    after = [
        c.committed_at
        for c in rows.values()
        if c.committed_at is not None and c.committed_at >= since
    ]
    return round(min(after) - fault_at, 3) if after else None


def account(
    path: str,
    ledger: list[Sent],
    rows: dict[str, Commit],
    parked: set[str],
    in_queue: int,
    fault_at: float | None,
    ids: str | None = None,
) -> PathReport:
    """``ids``: what every order id of this path starts with, to find rows the ledger lacks."""
    acked = [s for s in ledger if s.accepted]
    errors = [s for s in ledger if not s.accepted]
    committed = [s for s in acked if s.order_id in rows]
    duplicated = [s for s in committed if rows[s.order_id].rows > 1]
    in_dlq = [s for s in acked if s.order_id not in rows and s.order_id in parked]
    unplaced = [s for s in acked if s.order_id not in rows and s.order_id not in parked]
    queued = unplaced[: in_queue if path == "queue" else 0]
    lost = unplaced[len(queued) :]
    origin = fault_at or (ledger[0].sent_at if ledger else 0)
    latencies = sorted(
        (commit.committed_at - commit.accepted_at) * 1000
        for commit in (rows[s.order_id] for s in committed)
        if commit.committed_at is not None and commit.accepted_at is not None
    )
    rows_written = sum(rows[s.order_id].rows for s in ledger if s.order_id in rows)
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
        client_wait_ms=_percentiles(sorted((s.answered_at - s.sent_at) * 1000 for s in acked)),
        retried=sum(1 for s in ledger if s.attempts > 1),
        rows_written=rows_written,
        unexpected=len(
            {i for i in rows if ids and i.startswith(ids)} - {s.order_id for s in ledger}
        ),
    )


def _percentiles(values: list[float]) -> dict[str, float]:
    """p50 / p95 / p99 in ms, to a tenth: what a report prints."""
    return {cut: round(value, 1) for cut, value in stats.latency(values).items()} if values else {}


class _Tally:
    """How many answers each path's sender has had, so the fault lands a third of the way
    through the traffic as sent, not as scheduled: a slow machine sends behind its schedule."""

    def __init__(self, paths: list[str]) -> None:
        self.answered = dict.fromkeys(paths, 0)
        self.changed = threading.Condition()

    def add(self, path: str) -> None:
        with self.changed:
            self.answered[path] += 1
            self.changed.notify_all()

    def wait_for_a_third(self, count: int, senders: list[threading.Thread]) -> None:
        """Until every path has a third of its answers, or its sender has ended (stopped early)."""

        def reached() -> bool:
            return all(
                n * 3 >= count or not sender.is_alive()
                for n, sender in zip(self.answered.values(), senders, strict=True)
            )

        with self.changed:
            while not reached():
                self.changed.wait(0.25)  # also wakes for a sender that ended without an answer


class _Sampler(threading.Thread):
    """Queue depth at the target's poll interval, for the peak (and the dashboard's chart)."""

    def __init__(self, target: Target) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.target.poll_seconds):
            try:
                self.peak = max(self.peak, self.target.depth())
            except Exception:  # a missed sample is not worth failing the drill for
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
