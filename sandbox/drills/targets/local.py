"""The local sandbox as a drill target: its own failover, faults, queue, DLQ and database."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sandbox.drills.targets import Commit
from sandbox.ops import dlq, failover, faults
from sandbox.ops.load import Api
from sandbox.platform import process
from sandbox.platform.hints import command as hint
from sandbox.platform.state import StackState
from sandbox.spec.choices import FAILOVER_MODES
from sandbox.standins import localstack
from sandbox.standins.aurora import cluster, database, events
from sandbox.standins.sqs import depth

COMMITTED = (
    "SELECT order_id, min(EXTRACT(EPOCH FROM accepted_at))::float8, "
    "min(EXTRACT(EPOCH FROM committed_at))::float8, count(*) "
    "FROM orders WHERE order_id LIKE %s GROUP BY order_id"
)


#: A bound on the wait for a repair, not a wait: it ends at the control plane's event.
RECOVERY_BOUND_SECONDS = 600.0
#: lagging-crash: commits per path the reader misses before the crash (each one lost, if async).
LAG_COMMITS = 20
#: ... and under sync replication, commits held waiting for the reader (none is acknowledged).
SYNC_WAITERS = 2


#: A drill's commits per path: its order ids are ``{prefix}-{path}-{n}``.
PER_PATH = (
    "SELECT split_part(substr(order_id, length(%s) + 2), '-', 1), count(*) "
    "FROM orders WHERE order_id LIKE %s GROUP BY 1"
)


class LocalTarget:
    """Every fault is possible here (partitions on the Compose profile), and the database is read
    directly, with timestamps."""

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
        """Every fault can be injected locally; an unannounced one lasts as long as the control
        plane takes, so it takes no outage."""
        if fault in faults.UNANNOUNCED and outage is not None:
            raise ValueError(
                f"--outage is not for {fault}: the control plane decides how long it lasts"
            )
        refused = faults.refusal(fault, self.state.runtime)
        if refused:
            raise ValueError(refused)

    def api(self) -> Api:
        return Api.local(self.state)

    def inject(
        self,
        fault: str,
        outage: float | None,
        prefix: str = "",
        begun: Callable[[], None] = lambda: None,
    ) -> tuple[float, float]:
        state = self.state
        at = time.time()
        if fault == "lagging-crash":
            # The reader falls behind, then the writer crashes: the fault's moment is the crash;
            # the writes it can cost are those of the lag before it. The lag lasts the outage if
            # one is given, else until every path of the drill has committed a few orders the
            # reader never received: an event, so the lag means the same on any machine. Waited
            # for, it has begun once the reader is cut off (the condition's first look), so the
            # drill's remaining traffic all comes after the cut; a fixed lag says so at once.
            if outage is not None:
                begun()
            lag = outage if outage is not None else self._lag_until_commits(prefix, begun)
            done = failover.failover(state, "crash", 0.0, lag=lag)
            return done.started, done.completed
        if fault == "lock-stall":
            # Until the consumer has given up on an insert that waits (or the outage).
            until = outage if outage is not None else faults.consumer_timed_out(state)
            faults.lock_stall(state, until, begun)
            return at, time.time()
        begun()  # every other fault is in place as soon as it is asked for, or nearly
        if fault in FAILOVER_MODES:
            default = 5.0 if fault == "hang" else 0.0
            done = failover.failover(state, fault, outage if outage is not None else default)
            return at, done.completed
        if fault == "long-outage":
            # Past the retry budget: until every queued message has run out of receives (or a
            # fixed outage, if one was asked for). Without hold, clients fail fast meanwhile.
            wait = outage if outage is not None else faults.retry_budget_spent(state)
            done = failover.failover(state, "crash", wait, hold=False)
            return at, done.completed
        if fault == "proxy-restart":
            faults.proxy_restart(state)
            return at, time.time()
        if fault == "consumer-crash":
            faults.consumer_crash(state)
            return at, time.time()
        if fault == "secret-rotated":
            faults.secret_rotated(state)
            return at, time.time()
        if fault in faults.UNANNOUNCED:
            return self._unannounced(fault)
        raise ValueError(f"unknown fault {fault!r}")

    def _unannounced(self, fault: str) -> tuple[float, float]:
        """Signal the process, then wait (bounded) for the repair: the control plane's event
        (its keeper's, for the control plane itself) says when it was back."""
        state = self.state
        name, _ = faults.unannounced(state, fault)
        at = time.time()
        wanted = faults.UNANNOUNCED[fault].recovered
        bound = max(RECOVERY_BOUND_SECONDS, 20 * state.control_plane.detection_seconds)
        found: list[dict[str, Any]] = []

        def back() -> bool:  # a service's restart is its own, not another's
            found[:] = [
                e
                for e in events.read(state, since=at)
                if e["event"] in wanted
                and (e["event"] != "service-restarted" or e.get("node") == name)
            ]
            return bool(found)

        try:
            process.wait_until(back, timeout=bound, interval=0.1, what=" or ".join(wanted))
        except TimeoutError:
            raise TimeoutError(
                f"{fault}: the stack did not recover within {bound:.0f} s "
                f"(no {' or '.join(wanted)} event; see `{hint('status')}` and its log)"
            ) from None
        return at, found[0]["epoch"]

    def _lag_until_commits(self, prefix: str, begun: Callable[[], None]) -> cluster.Until:
        """Async: until the writer holds `LAG_COMMITS` orders of each of the drill's paths
        (``{prefix}-{path}-...``) that the reader, cut off, does not: counted on both nodes, so
        what committed while the cut was still being made counts too, however slow this machine
        is. Sync: nothing commits meanwhile, so until commits are held waiting for the reader
        (`SYNC_WAITERS`)."""
        if self.state.replication == "sync":

            def held() -> bool:
                begun()
                with database.connect(self.state, self.state.writer.name) as conn:
                    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
                    return conn.execute(query).fetchone()[0] >= SYNC_WAITERS

            event = f"{SYNC_WAITERS} commits were waiting for the reader"
            return cluster.Until(held, event, bound=RECOVERY_BOUND_SECONDS, interval=0.2)
        reader = self.state.readers[0].name

        def commits(node: str) -> dict[str, int]:
            with database.connect(self.state, node) as conn:
                return dict(conn.execute(PER_PATH, (prefix, f"{prefix}-%")).fetchall())

        def behind() -> bool:
            begun()
            writer, received = commits(self.state.writer.name), commits(reader)
            missing = {path: n - received.get(path, 0) for path, n in writer.items()}
            return bool(missing) and min(missing.values()) >= LAG_COMMITS

        event = f"{LAG_COMMITS} orders per path had committed that the reader never received"
        return cluster.Until(behind, event, bound=RECOVERY_BOUND_SECONDS, interval=0.2)

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
