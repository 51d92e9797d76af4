"""Faults other than a failover, each a CLI command and a drill fault.

Two kinds. The announced ones (`hang`, `lock_stall`, `proxy_restart`, `consumer_crash`,
`secret_rotated`) are done by the sandbox, which knows it did them. The unannounced ones
(`unannounced`) are done to a process from outside, as an OOM kill, a crashed host or a broken
switch would: a signal to its pid, or (on the Compose profile) its container cut off the network
while it runs, and nothing else: no failover code runs, no state changes, and the control plane
has to notice and repair on its own.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sandbox.platform import runtime
from sandbox.platform.state import StackState
from sandbox.spec.queue import QueueSettings
from sandbox.standins.aurora import events
from sandbox.standins.sqs import depth

# The stack, the database and LocalStack's client are imported where used, not here: the CLI
# builds `sandbox fault`'s commands from this module, and `sandbox --help` must not load psycopg
# or boto3 (the CLI's start time).
if TYPE_CHECKING:
    from sandbox.standins.aurora.cluster import Outage, Until

#: How many times the retry budget's least duration (every receive a visibility timeout apart,
#: plus LocalStack's ~1 s lateness) the long outage may last before it is an error. Only a
#: broken stack (no consumer receiving) gets near it; a slow machine takes longer per receive,
#: not four times the budget.
BUDGET_BOUND_FACTOR = 4
#: ... and never less than this, so a small test queue's bound is still minutes.
MIN_BUDGET_BOUND_SECONDS = 600.0


@dataclass(frozen=True)
class Unannounced:
    """A fault done to a process from outside, and what says it is over."""

    target: str  # a component, or "writer" / "reader", looked up when it happens
    #: A signal to its processes, or "partition": cut off the network while it runs, so it is
    #: not dead to itself, only to everyone else (`runtime.Runtime.partition`).
    how: signal.Signals | Literal["partition"]
    what: str  # for `sandbox fault --help`
    #: The control plane's events that end it (none: nobody repairs it but `make up`).
    recovered: tuple[str, ...] = ()


WRITER_BACK = ("failover-completed", "writer-restarted")
SERVICE_BACK = ("service-restarted",)
UNANNOUNCED = {
    "writer-killed": Unannounced(
        "writer", signal.SIGKILL, "SIGKILL the writer, as an OOM kill would", WRITER_BACK
    ),
    "writer-frozen": Unannounced(
        "writer", signal.SIGSTOP, "SIGSTOP the writer: it must be fenced", WRITER_BACK
    ),
    "reader-killed": Unannounced(
        "reader", signal.SIGKILL, "SIGKILL the reader", ("reader-rejoined",)
    ),
    "proxy-killed": Unannounced("proxy", signal.SIGKILL, "SIGKILL PgBouncer", SERVICE_BACK),
    "consumer-killed": Unannounced(
        "consumer", signal.SIGKILL, "SIGKILL the consumer runner", SERVICE_BACK
    ),
    "control-plane-killed": Unannounced(
        "control-plane",
        signal.SIGKILL,
        "SIGKILL the control plane (its keeper, or the engine, restarts it)",
        SERVICE_BACK,
    ),
    "api-killed": Unannounced("api", signal.SIGKILL, "SIGKILL the API gateway", SERVICE_BACK),
    "localstack-killed": Unannounced(
        "aws",
        signal.SIGKILL,
        "SIGKILL LocalStack (SQS): the queue comes back from its journal",
        ("queue-restored",),
    ),
    "dashboard-killed": Unannounced(
        "dashboard", signal.SIGKILL, "SIGKILL the dashboard", SERVICE_BACK
    ),
    "keeper-killed": Unannounced(
        "keeper", signal.SIGKILL, "SIGKILL the control plane's keeper (native)", SERVICE_BACK
    ),
    "writer-partitioned": Unannounced(
        "writer",
        "partition",
        "Cut the writer off the network while it runs (Compose): it must be fenced",
        WRITER_BACK,
    ),
    "reader-partitioned": Unannounced(
        "reader",
        "partition",
        "Cut the reader off the network while it runs (Compose): the writer's sync commits wait",
        ("reader-rejoined",),
    ),
}
#: The faults only a network between the servers can show: the Compose profile's.
PARTITIONS = tuple(name for name, fault in UNANNOUNCED.items() if fault.how == "partition")


def refusal(fault: str, runtime: str) -> str | None:
    """Why a local stack of this runtime cannot take ``fault``, or None if it can."""
    if fault in PARTITIONS and runtime != "compose":
        return (
            f"{fault} needs a network between the servers: natively they share the host's "
            "loopback; start the Compose profile (make up PROFILE=compose)"
        )
    if fault == "keeper-killed" and runtime != "native":
        return "keeper-killed: on the Compose profile the engine keeps the control plane running"
    return None


def unannounced(state: StackState, fault: str) -> tuple[str, int]:
    """Signal the fault's process and all below it (a node: the postmaster with its backends,
    as when its host dies or freezes), or cut it off the network, and record that it happened;
    returns (component, pid). Nothing else: no lock, no state."""
    done = UNANNOUNCED[fault]
    name = {"writer": state.writer.name, "reader": state.readers[0].name}.get(
        done.target, done.target
    )
    where = runtime.of(state)
    pid = state.pids.get(name, 0)
    if not where.alive(state, name):
        raise RuntimeError(f"{name} is not running: no {fault} fault to make")
    if done.how == "partition":
        where.partition(state, name)
        message = f"{fault}: {name} (pid {pid}) cut off the network, still running"
    else:
        where.signal(state, name, done.how)
        message = f"{fault}: {done.how.name} to {name} (pid {pid})"
    events.record(state, "fault", message, fault=fault, node=name, pid=pid)
    return name, pid


def hang(state: StackState, seconds: float) -> None:
    """The writer stops answering (SIGSTOP to all its processes), then carries on (SIGCONT).

    Frozen for longer than the control plane's detection window, it is failed over like any
    writer that stopped answering; the SIGCONT then finds it fenced (killed): nothing to wake.
    """
    writer = state.writer.name
    where = runtime.of(state)
    where.signal(state, writer, signal.SIGSTOP)
    events.record(state, "writer-hung", f"writer {writer} stopped responding for {seconds:g} s")
    try:
        time.sleep(seconds)
    finally:
        where.signal(state, writer, signal.SIGCONT)
        events.record(state, "writer-resumed", f"writer {writer} responding again")


def lock_stall(state: StackState, until: Outage, begun: Callable[[], None] = lambda: None) -> None:
    """Every insert waits while the writer answers: an exclusive lock on the orders table (a
    migration, a lock held too long) until ``until``. Reads go on (EXCLUSIVE lets SELECT in)
    and the control plane sees a healthy writer. What it costs is what a consumer does with a
    commit that takes longer than its function's timeout: the message comes back after the
    visibility timeout while the first insert still waits, and commits too once let go."""
    from sandbox.standins.aurora import database
    from sandbox.standins.aurora.cluster import OutageBoundPassed, wait_out

    writer = state.writer.name
    with database.connect(state, writer) as conn, conn.transaction():
        conn.execute("LOCK TABLE orders IN EXCLUSIVE MODE")
        events.record(state, "writer-stalled", f"writer {writer}: every insert waits on a lock")
        begun()
        missed = wait_out(until)
    events.record(state, "writer-unstalled", f"writer {writer}: the lock is released")
    if missed:
        raise OutageBoundPassed(missed)


def consumer_timed_out(state: StackState) -> Until:
    """The lock stall's end: the consumer has timed out on an invocation since the lock. Its
    insert still waits on the lock (nobody cancels it: the function's instance is gone) and
    commits once let go, while the message, never deleted, comes back after the visibility
    timeout and is inserted again: a second row, unless the insert is idempotent. Read from the
    runner's own log; a stall that went on would also pile up the abandoned sessions until the
    database refused new ones."""
    from sandbox.standins.aurora.cluster import Until

    log = state.path("logs", "consumer.log")
    seen = log.stat().st_size if log.exists() else 0

    def happened() -> bool:
        with log.open() as lines:
            lines.seek(seen)
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:  # a traceback's line, or one being written
                    continue
                if isinstance(entry, dict) and entry.get("outcome") == "timeout":
                    return True  # the runner's "invocation" line of a timed-out invocation
        return False

    least = state.runner.function_timeout_seconds + state.runner.wait_time_seconds
    bound = max(MIN_BUDGET_BOUND_SECONDS, BUDGET_BOUND_FACTOR * least)
    return Until(happened, "the consumer timed out on an insert waiting on the lock", bound)


def proxy_restart(state: StackState) -> None:
    from sandbox import stack

    stack.restart(state, "proxy")
    events.record(state, "proxy-restarted", "PgBouncer restarted")


def consumer_crash(state: StackState) -> None:
    from sandbox import stack

    stack.kill(state, "consumer")
    events.record(state, "consumer-crashed", "consumer runner killed (SIGKILL)")
    time.sleep(1)
    stack.start(state, "consumer")


def secret_rotated(state: StackState) -> None:
    """The application role's password changes as Secrets Manager's single-user rotation changes
    it: in PostgreSQL (on the writer; the reader has it by replication), then in the secret, then
    in PgBouncer's auth file, as RDS Proxy reads the secret (and the state file, so a proxy or
    LocalStack started again later keeps it). Connections already open stay open, as a rotation
    leaves them; then PgBouncer drops its clients' connections, as RDS Proxy drops idle ones (its
    idle client timeout) but all at once, so each function instance logs in again now rather
    than in minutes, with the password it cached: refused, it reads the secret again and
    reconnects, with no restart. A statement in flight at the drop fails, as in a proxy restart,
    and its record comes back from the queue."""
    import secrets

    from psycopg import sql

    from sandbox.standins import localstack, rds_proxy, secrets_manager
    from sandbox.standins.aurora import cluster, database

    # Under the cluster lock: a failover meanwhile would rewrite PgBouncer's config too.
    with cluster.exclusive(state, "rotating the application role's password"):
        state.db_password = secrets.token_hex(16)
        with database.connect(state, state.writer.name) as conn:
            role = sql.Identifier(state.db_user)
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, state.db_password))
        state.save()
        secrets_manager.ensure_secret(localstack.client(state, "secretsmanager"), state)
        rds_proxy.write_config(state)
        rds_proxy.command(state, "RELOAD")
        # PgBouncer 1.18 drops clients only with their servers (KILL), and then holds new ones.
        rds_proxy.command(state, f"KILL {state.db_name}")
        rds_proxy.command(state, f"RESUME {state.db_name}")
    events.record(
        state, "secret-rotated", f"password of {state.db_user} rotated; proxy clients dropped"
    )


def retry_budget_spent(state: StackState) -> Until:
    """The long outage: until every message queued before or during it has run out of receives.

    That is the event "the queue is empty, nothing in flight, and the DLQ has grown": the
    consumer cannot commit during the outage, so a message leaves the queue only for the DLQ.
    How long it takes depends on how fast the consumer fails each batch, so it is waited for,
    not computed from the queue's settings.
    """
    from sandbox.standins import localstack
    from sandbox.standins.aurora.cluster import Until

    sqs = localstack.client(state, "sqs")
    parked_before = depth(sqs, state.dlq_url).total

    def spent() -> bool:
        queued = depth(sqs, state.queue_url).total
        return queued == 0 and depth(sqs, state.dlq_url).total > parked_before

    event = "every queued message had run out of receives and moved to the DLQ"
    return Until(spent, event, retry_budget_bound(state.queue))


def retry_budget_bound(settings: QueueSettings) -> float:
    """How long a wait for a message to spend its receives may last before it is an error."""
    least = settings.max_receive_count * (settings.visibility_timeout_seconds + 1)
    return max(MIN_BUDGET_BOUND_SECONDS, BUDGET_BOUND_FACTOR * least)
