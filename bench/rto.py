"""Failover RTO over repeated crashes, under a light steady load through the queued path.

Each trial SIGKILLs the writer with `sandbox.ops.failover.failover` (crash mode: the proxy holds new
work, the reader is promoted, the proxy repointed, the old writer rejoins), alternating n1 and n2.
Two recovery points, both timed from the failover's start (the SIGKILL follows within a
millisecond) to a commit time on the new writer's clock, so neither includes a client's GIL or
scheduling delay in this busy process:

(a) writer accepting writes: the first probe INSERT through PgBouncer committed by the new writer.
    This is what any client of the proxy sees.
(b) first order committed on the new writer (``orders.committed_node`` / ``committed_at``): what
    the queued path sees, the consumer having noticed, reconnected and committed.

Then as many unannounced kills: SIGKILL to the writer's processes and nothing else
(`sandbox.ops.faults.unannounced`), so the control plane has to notice before it fails over. Timed
from the kill: its "writer lost" event (detection), its failover's 0073 -> 0071, and (a) and (b)
as above; the announced crashes of the same run are the baseline they are set against.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import psycopg

from bench import stats
from bench.loops import PacedLoad
from bench.model import Figure, Section, Spread
from sandbox.drills.stats import percentile
from sandbox.ops import faults
from sandbox.ops.failover import failover
from sandbox.platform import process
from sandbox.platform.state import StackState
from sandbox.standins import control_plane
from sandbox.standins.aurora import database, events

PROBE_INTERVAL = 0.02  # between probes that succeed: a light load, like the orders'
RETRY_INTERVAL = 0.005  # after a failed probe: the resolution of (a) while the proxy is not holding
#: A bound on each wait for a commit or a rejoin, not a wait: each ends as soon as it happens.
BOUND_SECONDS = 300.0
PROBE = (
    "INSERT INTO orders (order_id, customer_id, payload, accepted_at) "
    "VALUES (%s, 1, '{}', now()) "
    "RETURNING committed_node, EXTRACT(EPOCH FROM committed_at)::float8"
)
FIRST_COMMIT = (
    "SELECT min(EXTRACT(EPOCH FROM committed_at))::float8 FROM orders "
    "WHERE committed_node = %s AND committed_at >= to_timestamp(%s) AND order_id LIKE %s"
)


@dataclass
class Trial:
    old_writer: str
    new_writer: str
    accepting_s: float  # (a)
    first_commit_s: float  # (b)
    promoted_s: float  # the reader out of recovery
    completed_s: float  # proxy repointed and resumed: the failover's own "completed" event
    rejoin_s: float  # completed -> the old writer streaming again
    rejoin_method: str


@dataclass
class Kill:
    """One unannounced writer kill, each figure from the kill."""

    old_writer: str
    new_writer: str
    detected_s: float  # the control plane's "writer lost" event
    failover_s: float  # its RDS-EVENT-0073 -> 0071
    completed_s: float  # detection + failover: the failover's "completed" event
    accepting_s: float  # (a)
    first_commit_s: float  # (b)


class WriteProbe(threading.Thread):
    """INSERTs through the proxy DSN over and over, recording which node committed each, and when.

    A probe sent while the proxy holds (PAUSE) goes through the moment it resumes; one that fails
    (in flight at the crash, or sent before the hold) is retried almost at once on the same client
    connection, which needs no new login (SCRAM is slow on a loaded machine).
    """

    def __init__(self, state: StackState) -> None:
        super().__init__(daemon=True)
        self.dsn = state.proxy_dsn
        self.commits: list[tuple[str, float]] = []  # (node, commit epoch)
        self.done = threading.Event()

    def run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self.done.is_set():
            try:
                if conn is None or conn.closed:
                    # transaction pooling cannot keep prepared statements: prepare_threshold=None
                    conn = psycopg.connect(
                        self.dsn, autocommit=True, prepare_threshold=None, connect_timeout=2
                    )
                node, committed_at = conn.execute(PROBE, (f"probe-{uuid.uuid4().hex}",)).fetchone()
                self.commits.append((node, committed_at))
                pause = PROBE_INTERVAL
            except psycopg.Error:
                if conn is not None and conn.broken:
                    conn.close()
                    conn = None
                pause = RETRY_INTERVAL
            self.done.wait(pause)
        if conn is not None:
            conn.close()

    def first_commit(self, node: str, after: float, timeout: float = BOUND_SECONDS) -> float:
        """When ``node`` first committed a probe after ``after`` (waits up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [at for by, at in list(self.commits) if by == node and at >= after]
            if found:
                return min(found)
            time.sleep(0.05)
        raise TimeoutError(f"no probe write committed by {node} within {timeout:.0f} s")

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


def first_commit(
    state: StackState, node: str, after: float, prefix: str, timeout: float = BOUND_SECONDS
) -> float:
    """When the load's first order committed on ``node`` after ``after`` (read on the writer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.connect(state, state.writer.name) as conn:
            row = conn.execute(FIRST_COMMIT, (node, after, f"{prefix}%")).fetchone()
        if row and row[0] is not None:
            return float(row[0])
        time.sleep(0.1)
    raise TimeoutError(f"no order committed on {node} within {timeout:.0f} s of the failover")


def wait_rejoined(state: StackState, timeout: float = BOUND_SECONDS) -> None:
    """Both nodes streaming (in sync mode the reader synchronous again) before the next crash."""
    reader = state.readers[0].name

    def ready() -> bool:
        status = database.replication_status(state)[reader]
        synchronous = state.replication != "sync" or status.get("sync") == "sync"
        return status.get("state") == "streaming" and synchronous

    process.wait_until(ready, timeout=timeout, what=f"{reader} streaming from {state.writer.name}")


def wait_flowing(state: StackState, probe: WriteProbe, prefix: str) -> None:
    """Until both the probe and the load have committed on the writer since now: the next crash
    lands on traffic that is flowing, whatever the machine's pace, not after a fixed pause."""
    now, writer = time.time(), state.writer.name
    probe.first_commit(writer, now)
    first_commit(state, writer, now, prefix)


def trial(state: StackState, probe: WriteProbe, prefix: str) -> Trial:
    done = failover(state, "crash")  # returns once the old writer has rejoined
    rejoined = time.time()
    accepting = probe.first_commit(done.new_writer, done.started)
    committed = first_commit(state, done.new_writer, done.started, prefix)
    rejoin = [e for e in events.read(state, since=done.started) if e["event"] == "reader-rejoined"]
    return Trial(
        old_writer=done.old_writer,
        new_writer=done.new_writer,
        accepting_s=accepting - done.started,
        first_commit_s=committed - done.started,
        promoted_s=done.promoted - done.started,
        completed_s=done.seconds,
        rejoin_s=rejoined - done.completed,
        rejoin_method=rejoin[-1].get("method", "?") if rejoin else "?",
    )


def wait_watched(state: StackState, timeout: float = BOUND_SECONDS) -> None:
    """Until the control plane has seen the reader synchronous: it would fail the writer over
    now. Right after a failover it has not looked yet, and a writer lost then is restarted in
    place (no reader is known to have its commits), which is another measurement."""
    writer, reader = state.writer.name, state.readers[0].name

    def watched() -> bool:
        said = control_plane.status(state) or {}
        return said.get("writer") == writer and reader in said.get("eligible", [])

    process.wait_until(watched, timeout=timeout, what=f"the control plane to see {reader} sync")


def kill(state: StackState, probe: WriteProbe, prefix: str) -> Kill:
    wait_watched(state)
    old = state.writer.name
    faults.unannounced(state, "writer-killed")
    at = time.time()

    events.wait_for(state, ("failover-completed",), since=at, timeout=BOUND_SECONDS)
    seen = events.read(state, since=at)
    (lost, started, done) = (
        next(e for e in seen if e["event"] == kind)
        for kind in ("writer-lost", "failover-started", "failover-completed")
    )
    new = done["new_writer"]
    return Kill(
        old_writer=old,
        new_writer=new,
        detected_s=lost["epoch"] - at,
        failover_s=done["epoch"] - started["epoch"],
        completed_s=done["epoch"] - at,
        accepting_s=probe.first_commit(new, at) - at,
        first_commit_s=first_commit(state, new, at, prefix) - at,
    )


def run(
    state: StackState,
    trials: int,
    load_rate: float,
    on_trial: Callable[[int, Trial], None],
    on_kill: Callable[[int, Kill], None] = lambda index, kill: None,
) -> Section:
    section = Section(
        "rto",
        f"Failover RTO: {trials} crash failovers, then {trials} unannounced writer kills, "
        f"{load_rate:g} orders/s load",
    )
    prefix = f"rto-{uuid.uuid4().hex[:6]}"
    wait_rejoined(state)
    load = PacedLoad(state, prefix, load_rate, max_seconds=60 + trials * 60)
    probe = WriteProbe(state)
    load.start()
    probe.start()
    results: list[Trial] = []
    kills: list[Kill] = []
    try:
        wait_flowing(state, probe, prefix)  # before the first crash
        for index in range(trials):
            results.append(trial(state, probe, prefix))
            on_trial(index, results[-1])
            wait_rejoined(state)
            wait_flowing(state, probe, prefix)
        for index in range(trials):
            kills.append(kill(state, probe, prefix))
            on_kill(index, kills[-1])
            wait_rejoined(state)
            wait_flowing(state, probe, prefix)
    finally:
        probe.stop()
        load.stop()
        section.details = {
            "trials": [asdict(t) for t in results],
            "kills": [asdict(k) for k in kills],
            "load": {"rate": load_rate, "accepted": load.accepted, "errors": load.errors},
        }
    section.spreads = _spreads(
        results,
        ("(a) new writer accepting writes via PgBouncer", "accepting_s"),
        ("(b) first order committed on the new writer", "first_commit_s"),
        ("reader promoted", "promoted_s"),
        ("failover completed (proxy repointed)", "completed_s"),
        ("old writer streaming again (counted from completed)", "rejoin_s"),
    ) + _spreads(
        kills,
        ("unannounced kill: detected by the control plane", "detected_s"),
        ("unannounced kill: its failover, RDS-EVENT-0073 -> 0071", "failover_s"),
        ("unannounced kill: detection + failover (kill -> completed)", "completed_s"),
        ("unannounced kill: (a) new writer accepting writes via PgBouncer", "accepting_s"),
        ("unannounced kill: (b) first order committed on the new writer", "first_commit_s"),
    )
    lag = [t.first_commit_s - t.accepting_s for t in results]
    noticed = percentile([k.accepting_s for k in kills], 50)
    section.figures = [
        Figure(
            "consumer behind the proxy: (b) - (a), median",
            percentile(lag, 50),
            "s",
            note="what the queued path adds once the writer takes writes",
        ),
        Figure(
            "unannounced kill, (a) median",
            noticed,
            "s",
            versus={
                "announced crash (a), median": stats.ratio(
                    noticed, percentile([t.accepting_s for t in results], 50)
                )
            },
            note="what noticing costs: the control plane's detection window, mostly",
        ),
        Figure("orders accepted by the API during the trials", load.accepted, "orders"),
        Figure(
            "API errors during the trials",
            load.errors,
            "requests",
            note="the queued path should have none: the API never waits on the database",
        ),
    ]
    return section


def _spreads(trials: Sequence[Trial | Kill], *named: tuple[str, str]) -> list[Spread]:
    """One spread per (name, field) over the trials, in seconds."""
    return [
        Spread(name, "s", stats.spread([getattr(t, key) for t in trials]), len(trials))
        for name, key in named
    ]
