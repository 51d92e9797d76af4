"""`sandbox chaos`: steady traffic for minutes, and an unannounced fault every so often.

A drill makes one fault and accounts for it; chaos makes many, of every kind the stack's
profile can take, one after the other, while orders keep coming through the API at a steady
rate. Nobody tells the stack: each fault is a signal (or, on Compose, a partition) from
`sandbox.ops.faults`, and the stack has to notice and repair it by itself. After each fault
the run waits until the stack is whole again (`whole`), and records how long
that took and how many client requests failed meanwhile. At the end it stops the traffic, waits
for the queue to drain and accounts for every acknowledged order exactly as a drill does
(`sandbox.drills.drill.account`): committed once, committed twice+, in the DLQ, still queued,
lost.

The schedule is a pure function of the seed (`schedule`): the same seed, length, interval and
kinds give the same faults in the same order. Every kind comes once before any comes twice (a
shuffled deck, dealt in turn and shuffled again when it runs out), so a run with at least as
many faults as kinds has them all. Compound faults are kinds of their own: the new writer
killed while the old one rejoins, and LocalStack and the writer killed together.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.drills.drill import SETTLE_BOUND_SECONDS, account, settle
from sandbox.ops import faults
from sandbox.ops.load import Api, ClientPolicy, Sent, send_orders
from sandbox.platform.hints import command as hint
from sandbox.platform.state import StackState
from sandbox.standins.aurora import events

# The stack, the local target, the database and the user pool are imported where used, not
# here: the CLI reads this module's bounds for `sandbox chaos`'s options, and `sandbox --help`
# must not load psycopg, boto3 or PyJWT (the CLI's start time).

#: Bounds on a run: its length, its traffic, and the least time between two faults.
MAX_MINUTES = 120.0
MAX_RATE = 200.0
MIN_INTERVAL_SECONDS = 5.0
#: How long the stack may take to be whole again after a fault before the run fails: a bound,
#: not a wait (the wait ends as soon as it is whole), far above any repair seen.
WHOLE_BOUND_SECONDS = 300.0
#: How far a fault may land from its place in the schedule, as a share of the interval.
JITTER = 0.2
#: Faults made of several: their parts, in the order they are done.
COMPOUNDS: dict[str, tuple[str, ...]] = {
    # the writer killed; once the control plane has promoted the reader and is rejoining the
    # old writer, the new writer killed too (it runs alone: no reader has its commits yet)
    "writer-killed-while-rejoining": ("writer-killed", "writer-killed"),
    "localstack-and-writer-killed": ("localstack-killed", "writer-killed"),
}
#: The client: each order is sent again (the same order id, the same body) after no answer or a
#: 5xx, 0.5 s later, then 1, 2 ... 16 s: a minute-long gap is covered, and an order retried is
#: still one order. How many may wait at once follows from the rate (`_client`).
RETRIES = 6
CLIENT_TIMEOUT_SECONDS = 10.0


def kinds_on(runtime: str) -> tuple[str, ...]:
    """Every fault a stack of this runtime can take: the unannounced ones it does not refuse
    (partitions need Compose's network), and the compounds whose parts it can take."""
    single = tuple(name for name in faults.UNANNOUNCED if faults.refusal(name, runtime) is None)
    both = tuple(name for name, parts in COMPOUNDS.items() if set(parts) <= set(single))
    return single + both


def check_kinds(kinds: Iterable[str], runtime: str) -> tuple[str, ...]:
    """``kinds`` in a fixed order (sorted, once each), or ValueError naming the first this
    runtime cannot take."""
    chosen = tuple(sorted(set(kinds)))
    if not chosen:
        raise ValueError("no fault kinds to choose from")
    possible = kinds_on(runtime)
    for kind in chosen:
        if kind in possible:
            continue
        refused = faults.refusal(kind, runtime)
        parts = COMPOUNDS.get(kind, ())
        missing = [part for part in parts if part not in possible]
        if refused:
            raise ValueError(refused)
        if missing:
            raise ValueError(f"{kind} needs {', '.join(missing)}, which this stack cannot take")
        raise ValueError(f"unknown fault {kind!r}: one of {', '.join(possible)}")
    return chosen


@dataclass(frozen=True)
class Planned:
    """One fault of the schedule: the how-manyeth, which, and when (seconds after the start)."""

    index: int
    at: float
    fault: str


def schedule(seed: int, minutes: float, interval: float, kinds: Iterable[str]) -> list[Planned]:
    """The run's faults: one about every ``interval`` seconds (each moved by up to `JITTER` of
    it) while the traffic runs, drawn from ``kinds`` as a shuffled deck. Pure: the same
    arguments give the same list, whatever order ``kinds`` come in."""
    deck_kinds = sorted(set(kinds))
    if not deck_kinds:
        raise ValueError("no fault kinds to choose from")
    if interval <= 0 or minutes <= 0:
        raise ValueError("minutes and interval must be > 0")
    rng = random.Random(seed)
    span = minutes * 60
    count = math.ceil(span / interval) - 1  # each at k * interval < span: traffic after the last
    deck: list[str] = []
    planned = []
    for k in range(1, count + 1):
        if not deck:
            deck = list(deck_kinds)
            rng.shuffle(deck)
        at = k * interval + rng.uniform(-JITTER, JITTER) * interval
        planned.append(Planned(k, round(at, 1), deck.pop()))
    return planned


def check(minutes: float, rate: float, interval: float) -> None:
    """ValueError, before anything is done, for a run out of bounds or without a fault."""
    if not 0 < minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be > 0 and <= {MAX_MINUTES:g}")
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate must be > 0 and <= {MAX_RATE:g} orders/s")
    if interval < MIN_INTERVAL_SECONDS:
        raise ValueError(f"interval must be >= {MIN_INTERVAL_SECONDS:g} s")
    if interval >= minutes * 60:
        raise ValueError(
            f"an interval of {interval:g} s leaves no fault in {minutes:g} minute(s): "
            "make it shorter than the run"
        )


@dataclass
class FaultRow:
    """One fault as it happened."""

    index: int
    fault: str
    planned_s: float  # seconds after the start, as scheduled
    at_s: float | None = None  # as done (later when the stack was not whole yet when due)
    at: float | None = None  # epoch seconds
    hit: list[str] = field(default_factory=list)  # the components, in the order done
    whole_after_s: float | None = None  # fault -> whole again; None: not within the bound
    client_errors: int = 0  # orders sent from the fault until whole whose answer was an error
    retried: int = 0  # ... and those the client had to send more than once
    note: str = ""


@dataclass
class Account:
    """Every order the run sent, counted against the writer's rows, the queue and the DLQ."""

    sent: int
    acknowledged: int
    committed_once: int
    duplicates: int
    in_dlq: int
    still_queued: int
    lost: int
    client_errors: int  # orders whose last answer was an error (after its retries)
    errored_but_committed: int
    retried: int
    unexpected: int  # rows of this run's order ids that no request of the ledger sent


@dataclass
class ChaosReport:
    seed: int
    minutes: float
    rate: float
    interval: float
    kinds: list[str]
    runtime: str
    replication: str
    prefix: str  # every order id of the run starts with it
    started: float
    planned: list[Planned]
    faults: list[FaultRow]
    ended: float | None = None
    account: Account | None = None
    drained: bool = False
    whole_at_end: bool = False
    not_whole: list[str] = field(default_factory=list)  # at the end, if not whole
    stopped_early: str = ""  # why the faults stopped before the schedule's end
    peak_queue_depth: int = 0

    @property
    def problems(self) -> list[str]:
        """Why the run failed; empty if it passed."""
        said = []
        if self.account is None:
            said.append("no account was made")
        else:
            if self.account.lost:
                said.append(f"{self.account.lost} acknowledged order(s) lost")
            if self.account.duplicates:
                said.append(f"{self.account.duplicates} order(s) committed more than once")
            if self.account.unexpected:
                said.append(f"{self.account.unexpected} row(s) no request of the run sent")
        said += [
            f"fault {row.index} ({row.fault}): not whole within {WHOLE_BOUND_SECONDS:.0f} s"
            for row in self.faults
            if row.whole_after_s is None
        ]
        if self.account is not None and not self.drained:
            said.append(  # what is counted "still queued" then may be lost: it is not settled
                f"the queue did not drain within {SETTLE_BOUND_SECONDS:.0f} s of the traffic's end"
            )
        if self.stopped_early:
            said.append(self.stopped_early)
        if not self.whole_at_end:
            said.append(f"not whole at the end: {'; '.join(self.not_whole)}")
        return said

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> str:
        return json.dumps(asdict(self) | {"ok": self.ok, "problems": self.problems}, indent=2)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the traffic is stopped; ``summary`` says what was done and how the
    stack stands."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


Progress = Callable[[str, dict[str, Any]], None]


def run(
    state: StackState,
    seed: int,
    minutes: float,
    rate: float,
    interval: float,
    kinds: Iterable[str] | None = None,
    progress: Progress | None = None,
    whole_bound: float = WHOLE_BOUND_SECONDS,
) -> ChaosReport:
    """One chaos run on the local stack; the report is also saved as the run dir's chaos.json.

    ``progress(step, info)``: "live" about once a second (the fault now, queue depth,
    acknowledged and committed so far), "fault" as each is done, "whole" when the stack is
    whole again after it, "draining" once the traffic has stopped."""
    from sandbox.drills.targets.local import LocalTarget

    check(minutes, rate, interval)
    chosen = check_kinds(kinds_on(state.runtime) if kinds is None else kinds, state.runtime)
    plan = schedule(seed, minutes, interval, chosen)
    say = progress or (lambda step, info: None)
    missing = _wait_whole(state, min(whole_bound, 120.0))
    if missing:
        raise RuntimeError(
            f"the stack is not whole: {'; '.join(missing)} (see `{hint('status')}`; `make up` "
            "repairs what the control plane does not)"
        )
    report = ChaosReport(
        seed=seed,
        minutes=minutes,
        rate=rate,
        interval=interval,
        kinds=list(chosen),
        runtime=state.runtime,
        replication=state.replication,
        prefix=f"chaos-{uuid.uuid4().hex[:6]}",
        started=time.time(),
        planned=plan,
        faults=[],
    )
    _save(state, {"status": "running"} | asdict(report))
    # Longer than the run may last: each fault may hold the next back until the stack is whole.
    limit = minutes * 60 + len(plan) * whole_bound
    traffic = _Traffic(state, report.prefix, rate, limit)
    watch = _Watch(state, report, traffic, say)
    try:
        traffic.start()
        watch.start()
        for planned in plan:
            _sleep_until(report.started + planned.at)
            row = _strike(state, planned, report, whole_bound, watch, say)
            if row.whole_after_s is None:
                report.stopped_early = (
                    f"the faults stopped after fault {row.index}: the stack was not whole again"
                )
                break
        watch.now = ""
        _sleep_until(report.started + minutes * 60)
    except KeyboardInterrupt:
        raise Interrupted(_interrupted(state, report, traffic, watch)) from None
    except BaseException as error:
        traffic.stop()
        watch.stop()
        _save(state, {"status": "failed", "error": str(error) or type(error).__name__})
        raise
    try:
        say("draining", {})
        ledger = traffic.stop()
        report.ended = time.time()
        target = LocalTarget(state)
        acked = {s.order_id for s in ledger if s.accepted}
        drained = settle(target, f"{report.prefix}-", SETTLE_BOUND_SECONDS, acked)
        report.drained = drained is not None
        report.not_whole = _wait_whole(state, whole_bound)
        report.whole_at_end = not report.not_whole
    except KeyboardInterrupt:
        raise Interrupted(_interrupted(state, report, traffic, watch)) from None
    except BaseException as error:
        _save(state, {"status": "failed", "error": str(error) or type(error).__name__})
        raise
    finally:
        watch.stop()
    report.peak_queue_depth = watch.peak
    rows = target.committed(f"{report.prefix}-")
    path = account(
        "queue", ledger, rows, target.parked(), target.depth(), None, f"{report.prefix}-"
    )
    report.account = Account(
        sent=path.sent,
        acknowledged=path.accepted,
        committed_once=path.committed_once,
        duplicates=path.duplicates,
        in_dlq=path.in_dlq,
        still_queued=path.queued,
        lost=path.lost,
        client_errors=path.client_errors,
        errored_but_committed=path.errored_but_committed,
        retried=path.retried,
        unexpected=path.unexpected,
    )
    meanwhile(report.faults, ledger)
    _save(state, {"status": "done"} | json.loads(report.to_json()))
    return report


def meanwhile(rows: list[FaultRow], ledger: list[Sent]) -> None:
    """Each fault's client errors and retried orders: those sent from the fault until the
    stack was whole again (until the last answer, for one that never was)."""
    end = max((s.answered_at for s in ledger), default=0.0)
    for row in rows:
        if row.at is None:
            continue
        until = end if row.whole_after_s is None else row.at + row.whole_after_s
        window = [s for s in ledger if row.at <= s.sent_at <= until]
        row.client_errors = sum(1 for s in window if not s.accepted)
        row.retried = sum(1 for s in window if s.attempts > 1)


def _strike(
    state: StackState,
    planned: Planned,
    report: ChaosReport,
    bound: float,
    watch: _Watch,
    say: Progress,
) -> FaultRow:
    """Wait until the stack is whole (the fault before may still be being repaired), do the
    fault, then wait until the stack is whole again; the row is on the report from the start."""
    row = FaultRow(planned.index, planned.fault, planned.at)
    report.faults.append(row)
    watch.now = f"waiting for the stack to be whole before {planned.fault}"
    missing = _wait_whole(state, bound)
    if missing:
        row.note = f"the stack was not whole when it was due: {'; '.join(missing)}"
        return row
    watch.now = planned.fault
    row.at = time.time()
    row.at_s = round(row.at - report.started, 1)
    done: list[tuple[str, str, int, float]] = []  # (part, component, pid, when)

    def hit(part: str) -> None:
        when = time.time()
        done.append((part, *faults.unannounced(state, part), when))

    if planned.fault == "writer-killed-while-rejoining":
        old = state.writer.name
        hit("writer-killed")
        caught = _rejoining(state, old, row.at, bound)
        if caught is None:
            row.note = f"the control plane did not fail {old} over within {bound:.0f} s"
            return row
        if not caught:
            row.note = "the old writer had already rejoined when the new one was killed"
        hit("writer-killed")  # the new writer, alone
    else:
        for part in COMPOUNDS.get(planned.fault, (planned.fault,)):
            hit(part)
    row.hit = [name for _, name, _, _ in done]
    say("fault", {"row": row, "of": watch.planned})

    def repaired() -> bool:
        return all(_repaired(state, part, name, pid, when) for part, name, pid, when in done)

    deadline = row.at + bound
    while time.time() < deadline:
        if repaired() and not whole(state):
            row.whole_after_s = round(time.time() - row.at, 1)
            break
        time.sleep(0.5)
    else:
        row.note = "; ".join(filter(None, [row.note, *whole(state)]))
    watch.now = ""
    say("whole", {"row": row})
    return row


def _repaired(state: StackState, fault: str, name: str, pid: int, since: float) -> bool:
    """Has the stack done something about this part of a fault: one of its recovery events
    since it was done, or the component running again as another process? (A stack that
    looks whole a moment after a kill may not have noticed it yet.)"""
    wanted = faults.UNANNOUNCED[fault].recovered
    for event in events.read(state, since=since) if wanted else ():
        # a failover's or a rejoin's event names the node it made; a service's, the service
        if event["event"] in wanted and event.get("node", name) == name:
            return True
        if event["event"] in wanted and event["event"] != "service-restarted":
            return True
    if faults.UNANNOUNCED[fault].how == "partition":
        return False
    state.refresh()
    return state.pids.get(name, 0) not in (0, pid)


def _rejoining(state: StackState, old: str, since: float, bound: float) -> bool | None:
    """Until the control plane has replaced the writer ``old`` and is rejoining it: True then,
    False if the rejoin was already over when first seen, None at the bound."""
    from sandbox.standins import control_plane

    deadline = time.time() + bound
    while time.time() < deadline:
        said = control_plane.status(state) or {}
        if state.writer.name != old:
            if said.get("phase") == "rejoining":
                return True
            rejoined = events.read(state, since=since)
            if any(e["event"] == "reader-rejoined" and e.get("node") == old for e in rejoined):
                return False
        time.sleep(0.02)
    return None


def whole(state: StackState) -> list[str]:
    """What keeps the stack from being whole; empty when it is whole: every component healthy,
    both queues answering, each reader streaming from the writer (synchronously under sync
    replication), and the control plane watching, having seen it so (it would fail the writer
    over now, not restart it in place). A run waits for this before and after each fault."""
    from sandbox import stack
    from sandbox.standins import control_plane
    from sandbox.standins.aurora import database

    missing = [f"{name} down" for name, ok in stack.health(state).items() if not ok]
    try:
        stack.queued(state)
    except Exception:
        missing.append("the queues do not answer")
    writer, readers = state.writer.name, sorted(node.name for node in state.readers)
    try:
        streams = database.quickly(state, writer, _streams)
    except Exception:
        return [*missing, f"the writer {writer} does not answer"]
    wanted = "sync" if state.replication == "sync" else None
    for reader in readers:
        how, sync = streams.get(reader, ("", ""))
        if how != "streaming" or (wanted and sync != wanted):
            missing.append(f"{reader} not streaming{' synchronously' if wanted else ''}")
    said = control_plane.status(state) or {}
    if said.get("phase") != "watching":
        missing.append(f"the control plane is {said.get('phase', 'silent')}")
    elif time.time() - said.get("heartbeat", 0) > control_plane.STALE_SECONDS:
        missing.append("the control plane's heartbeat is stale")
    elif said.get("writer") != writer or said.get("eligible") != readers:
        missing.append(f"the control plane has not yet seen {writer} with {readers} in sync")
    return missing


def _streams(conn: Any) -> dict[str, tuple[str, str]]:
    """The writer's streams: reader -> (state, sync_state)."""
    query = "SELECT application_name, state, sync_state FROM pg_stat_replication"
    return {name: (how, sync) for name, how, sync in conn.execute(query)}


def _wait_whole(state: StackState, bound: float) -> list[str]:
    """Until the stack is whole (returns []), or what it still lacks at the bound."""
    deadline = time.time() + bound
    while True:
        missing = whole(state)
        if not missing or time.time() >= deadline:
            return missing
        time.sleep(0.5)


def _sleep_until(when: float) -> None:
    while (left := when - time.time()) > 0:
        time.sleep(min(left, 0.5))


def _client(rate: float) -> ClientPolicy:
    """Enough requests may wait at once for the rate's orders over the retries' whole span."""
    span = CLIENT_TIMEOUT_SECONDS + sum(0.5 * 2**k for k in range(RETRIES))
    return ClientPolicy(
        timeout=CLIENT_TIMEOUT_SECONDS,
        retries=RETRIES,
        in_flight=max(64, min(512, math.ceil(rate * span))),
    )


class _Traffic(threading.Thread):
    """Orders at a steady rate until stopped (or the bound), every answer in the ledger."""

    def __init__(self, state: StackState, prefix: str, rate: float, limit: float) -> None:
        from sandbox.standins import cognito

        super().__init__(name="chaos-traffic", daemon=True)
        # A token for the whole run: the pool's default lasts an hour, a run may last longer.
        token = cognito.issue_token(state, expires_in=int(limit) + 3600)
        self.api = Api(state.api_url, f"Bearer {token}")
        self.prefix, self.rate, self.limit = prefix, rate, limit
        self.cancel = threading.Event()
        self.ledger: list[Sent] = []
        self.lock = threading.Lock()
        self.acknowledged = self.errors = 0

    def run(self) -> None:
        send_orders(
            self.api,
            math.ceil(self.rate * self.limit),
            self.rate,
            prefix=self.prefix,
            max_seconds=self.limit,
            progress=self._answered,
            cancel=self.cancel,
            policy=_client(self.rate),
        )

    def _answered(self, sent: Sent) -> None:
        with self.lock:
            self.ledger.append(sent)
            self.acknowledged += sent.accepted
            self.errors += not sent.accepted

    def stop(self) -> list[Sent]:
        """Stop sending; returns the ledger once every request in flight has its answer."""
        self.cancel.set()
        if self.is_alive():
            self.join()
        with self.lock:
            return list(self.ledger)


class _Watch(threading.Thread):
    """About once a second: the fault now, queue depth, acknowledged and committed so far."""

    def __init__(
        self, state: StackState, report: ChaosReport, traffic: _Traffic, say: Progress
    ) -> None:
        from sandbox.drills.targets.local import LocalTarget

        super().__init__(name="chaos-watch", daemon=True)
        self.state, self.report, self.traffic, self.say = state, report, traffic, say
        self.planned = len(report.planned)
        self.now = ""  # the fault in progress, or what the run waits for
        self.peak = 0
        self.done = threading.Event()
        self.target = LocalTarget(state)

    def run(self) -> None:
        while not self.done.wait(1.0):
            try:
                self.say("live", self.look())
            except Exception:  # a missed look is not worth failing the run for
                continue

    def look(self) -> dict[str, Any]:
        depth: int | None
        try:
            depth = self.target.depth()
            self.peak = max(self.peak, depth)
        except Exception:  # LocalStack down: unknown, not zero
            depth = None
        return {
            "elapsed": time.time() - self.report.started,
            "fault": self.now,
            "faults_done": len(self.report.faults),
            "faults_planned": self.planned,
            "depth": depth,
            "acknowledged": self.traffic.acknowledged,
            "errors": self.traffic.errors,
            "committed": _committed(self.state, f"{self.report.prefix}-"),
        }

    def stop(self) -> None:
        self.done.set()
        if self.is_alive():
            self.join()


def _committed(state: StackState, prefix: str) -> int | None:
    """Orders of the run committed so far, from the writer; None while it does not answer."""
    from sandbox.standins.aurora import database

    try:
        with database.connect(
            state,
            state.writer.name,
            connect_timeout=database.ANSWER_SECONDS,
            options=f"-c statement_timeout={database.ANSWER_SECONDS * 1000}",
        ) as conn:
            query = "SELECT count(DISTINCT order_id) FROM orders WHERE order_id LIKE %s"
            return int(conn.execute(query, (f"{prefix}%",)).fetchone()[0])
    except Exception:
        return None


def _interrupted(state: StackState, report: ChaosReport, traffic: _Traffic, watch: _Watch) -> str:
    """Ctrl-C: stop the traffic (its requests in flight end), and say what was done and how
    the stack stands."""
    current = watch.now
    ledger = traffic.stop()
    watch.stop()
    acked = sum(1 for s in ledger if s.accepted)
    elapsed = time.time() - report.started
    made = [row for row in report.faults if row.at is not None]
    faults_done = "; ".join(
        f"{row.fault} at {row.at_s} s, "
        + ("not whole yet" if row.whole_after_s is None else f"whole after {row.whole_after_s} s")
        for row in made
    )
    said = (
        f"interrupted {elapsed:.0f} s in: {len(made)} of {len(report.planned)} "
        f"fault(s) made{f' ({faults_done})' if faults_done else ''}"
        f"{f'; then: {current}' if current else ''}. Traffic stopped: {len(ledger)} "
        f"order(s) sent, {acked} acknowledged (ids {report.prefix}-*), not accounted for. "
    )
    said += standing(state)
    _save(state, {"status": "interrupted", "summary": said})
    return said


def standing(state: StackState) -> str:
    """How the stack stands, in a sentence for whoever just stopped a command half-way (this
    run, a drill, a failover): whole, or what it lacks and who repairs it."""
    missing = whole(state)
    if not missing:
        return "The stack is whole."
    return (
        f"The stack is not whole: {'; '.join(missing)}; the control plane repairs it by itself "
        f"(`{hint('status')}` shows it; `make up` repairs the rest)."
    )


def _save(state: StackState, report: dict[str, Any]) -> None:
    target = state.path("chaos.json")
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str))
    tmp.replace(target)


def last(state: StackState) -> dict[str, Any] | None:
    """The current or last chaos run, as saved."""
    try:
        return json.loads(state.path("chaos.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
