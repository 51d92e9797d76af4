"""The Aurora cluster's own steps: the cluster lock, fencing, promotion, rejoining a reader.

A failover asked for (`sandbox.ops.failover`) and the control plane's own
(`sandbox.standins.control_plane`) both come here, and do the same things in the same order, the
way Aurora and RDS Proxy do them (the modes are `sandbox.ops.failover`'s).

``outage`` holds the cluster unavailable before promotion: for that many seconds, so a workshop
can watch an Aurora-paced (~30 s) failover, or until an event (`Until`), so a fault that must
outlast something (the queue's retry budget) lasts exactly until it has, on any machine. With
``hold`` (the default) the proxy holds new requests meanwhile, as RDS Proxy does; without it they
fail at once, as when the proxy itself gives up, which is what drives messages through their
retry budget into the DLQ.

Afterwards the old writer rejoins as the reader (pg_rewind, or a fresh clone if rewinding fails),
as Aurora's old writer does.

This module carries failovers out; the control plane decides when one is needed without being
asked. Every failover, asked for or automatic, runs under the cluster lock (`exclusive`),
so two can never race: a `sandbox failover` typed while the control plane is failing over waits
for it, then finds the writer it meant already replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from sandbox.platform import process, runtime
from sandbox.platform.state import StackState
from sandbox.standins import rds_proxy
from sandbox.standins.aurora import database, events
from sandbox.standins.aurora.database import PostgresNode

#: A bound, not a wait: the reader turns synchronous within milliseconds of the reload.
SYNCHRONOUS_TIMEOUT = 120.0


@dataclass(frozen=True)
class Until:
    """An outage that ends on an event, not after a time: how long the event takes to happen
    depends on the machine, and a fixed outage would mean something else on a slower one.

    ``bound`` only turns a broken stack's endless wait into an error: the failover still completes
    (the cluster comes back), then `OutageBoundPassed` says which event never happened.
    """

    happened: Callable[[], bool]
    event: str  # in words, for the error: "every queued message had moved to the DLQ"
    bound: float
    interval: float = 0.5


Outage = float | Until


class OutageBoundPassed(TimeoutError):
    """The event an outage waited for did not happen within its bound."""


class Busy(RuntimeError):
    """Another failover (or repair) holds the cluster lock."""


@contextlib.contextmanager
def exclusive(state: StackState, who: str, wait: bool = True) -> Iterator[None]:
    """Hold the cluster lock: the one failover, promotion or node repair at a time.

    ``wait=False`` raises `Busy` at once if someone holds it. The state is refreshed once the lock
    is held: whoever held it before may have changed the roles. The lock dies with its holder
    (``flock``), so a killed drill never leaves the cluster locked.
    """
    with open(state.path("cluster.lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(holder(state) or "the cluster is locked") from None
        lock.truncate(0)
        lock.write(json.dumps({"who": who, "pid": os.getpid(), "since": time.time()}))
        lock.flush()
        try:
            state.refresh()
            yield
        finally:
            lock.truncate(0)


def holder(state: StackState) -> str | None:
    """Who holds the cluster lock and since when, in words; None if nobody does."""
    try:
        held = json.loads(state.path("cluster.lock").read_text() or "null")
    except (FileNotFoundError, ValueError):
        return None
    if not held or not _locked(state):
        return None
    since = time.strftime("%H:%M:%S", time.localtime(held["since"]))
    return f"{held['who']} (pid {held['pid']}) since {since}"


def _locked(state: StackState) -> bool:
    """Whether anyone holds the lock: a killed holder leaves its words in the file, not its
    flock. Asked of the lock itself, because the holder's pid may be another container's."""
    with open(state.path("cluster.lock"), "a+") as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(probe, fcntl.LOCK_UN)
        return False


@dataclass
class Failover:
    mode: str
    old_writer: str
    new_writer: str
    started: float
    promoted: float
    completed: float

    @property
    def seconds(self) -> float:
        return self.completed - self.started


def take_over(state: StackState, new: str, pause: float, why: str) -> Failover:
    """The control plane's failover of a writer that stopped answering: fence it, promote
    ``new``. The caller holds the cluster lock (`exclusive`), has chosen ``new`` as a reader
    with every acknowledged commit, and rejoins the old writer itself afterwards."""
    old = state.writer.name
    return fail_over(state, "automatic", old, new, pause, False, True, 0.0, why=why)


def fail_over(
    state: StackState,
    mode: str,
    old: str,
    new: str,
    outage: Outage,
    rejoin: bool,
    hold: bool,
    lag: Outage,
    why: str = "",
) -> Failover:
    if lag:
        database.cut_replication(state, new)
        try:
            how_long = f"until {lag.event}" if isinstance(lag, Until) else f"for {lag:g} s"
            events.record(state, "reader-lagging", f"reader {new} stopped receiving WAL {how_long}")
            missed = wait_out(lag)
            if missed:
                raise OutageBoundPassed(missed)
        except BaseException:  # interrupted before the crash: leave the cluster as it was
            database.reconnect(state, new)
            raise
    started = time.time()
    events.record(
        state,
        "failover-started",
        f"failover ({mode}) from {old} to {new} started",
        mode=mode,
        old_writer=old,
        new_writer=new,
    )
    if mode == "switchover":
        rds_proxy.command(
            state, f"PAUSE {state.db_name}"
        )  # in-flight work finishes, new work waits
        final_lsn = _stop_cleanly(state, old)
        database.wait_replayed(state, new, final_lsn)
    elif mode == "crash":
        if runtime.alive(state, old):
            _crash(state, old)
        else:
            fence(state, old, f"writer {old} was already down")
    elif mode == "automatic":
        fence(state, old, why)
    else:
        runtime.of(state).signal(state, old, signal.SIGSTOP)
        events.record(state, "writer-hung", f"writer {old} stopped responding")
    if mode != "switchover":
        # PAUSE: new work waits. DISABLE + KILL: clients are refused at once, and reconnecting
        # ones too, as when the proxy gives up on an unreachable database. A proxy that is down
        # itself is no reason not to promote: it gets the new writer when it restarts.
        with contextlib.suppress(psycopg.OperationalError):
            rds_proxy.command(
                state, f"PAUSE {state.db_name}" if hold else f"DISABLE {state.db_name}"
            )
            if not hold:
                rds_proxy.command(state, f"KILL {state.db_name}")
    missed = wait_out(outage)
    if mode == "hang":
        _crash(state, old)  # fence the hung writer before anyone else writes
    database.promote(state, new)
    promoted = time.time()
    with contextlib.suppress(psycopg.OperationalError):
        repoint_proxy(state)
    completed = time.time()
    events.record(
        state,
        "failover-completed",
        f"failover to {new} completed",
        mode=mode,
        old_writer=old,
        new_writer=new,
        seconds=round(completed - started, 3),
    )
    if rejoin:
        rejoin_as_reader(state, old)
    if missed:
        raise OutageBoundPassed(missed)
    return Failover(mode, old, new, started, promoted, completed)


def wait_out(outage: Outage) -> str | None:
    """Wait out the outage; for an `Until` whose bound passed first, the error to raise.

    A check that fails (the queue's API not answering) means "not yet": the writer is down, and
    an exception here would leave it so.
    """
    if not isinstance(outage, Until):
        time.sleep(max(0.0, outage))
        return None
    deadline = time.monotonic() + outage.bound
    failure = ""
    while True:
        try:
            if outage.happened():
                return None
            failure = ""
        except Exception as error:
            failure = f" (last check failed: {error})"
        if time.monotonic() > deadline:
            return (
                f"the outage ended at its bound of {outage.bound:.0f} s before {outage.event}"
                + failure
            )
        time.sleep(outage.interval)


def _crash(state: StackState, name: str) -> None:
    kill_node(state, name)
    events.record(state, "writer-crashed", f"writer {name} crashed (SIGKILL)")


def fence(state: StackState, name: str, why: str) -> None:
    """Make sure node ``name`` can never take another write: SIGKILL to its every process
    (a frozen postmaster and its backends die at once; a later SIGCONT finds nothing to wake).
    Its data stays for the rejoin."""
    kill_node(state, name)
    events.record(state, "writer-fenced", f"{why}: {name} fenced (SIGKILL)")


def kill_node(state: StackState, name: str, sig: int = signal.SIGKILL) -> None:
    """``sig`` to every process of component ``name`` (the others spared), and forget its
    pid: a crash with no chance to clean up (`stack.kill` for any component is this too)."""
    runtime.kill(state, name, sig)
    state.save()


def _stop_cleanly(state: StackState, name: str) -> str:
    """Stop the writer (fast shutdown); returns its final checkpoint LSN."""
    PostgresNode(name).stop(state)
    state.save()
    argv = ["pg_controldata", state.nodes[name].data_dir]
    control = runtime.of(state).tool(state, argv, user=state.service_user or None).stdout
    line = next(x for x in control.splitlines() if x.startswith("Latest checkpoint location"))
    return line.split(":", 1)[1].strip()


def repoint_proxy(state: StackState) -> None:
    rds_proxy.write_config(state)
    rds_proxy.command(state, "RELOAD")
    rds_proxy.command(state, f"ENABLE {state.db_name}")
    with contextlib.suppress(psycopg.Error):  # RESUME of a database that is not paused fails
        rds_proxy.command(state, f"RESUME {state.db_name}")


def rejoin_as_reader(state: StackState, name: str, was_reader: bool = False) -> str:
    """Bring a stopped node back as a streaming reader; returns how: "restart", "rewind" or
    "clone".

    Its prepare (`PostgresNode.prepare`, where the node runs) rewinds an ex-writer onto the new
    writer's timeline (pg_rewind); a node that was a reader all along (``was_reader``: it
    crashed, or froze and was fenced) only starts again and replays. Either way a clone is the
    fallback.
    """
    node = state.nodes[name]
    clear_stale_lock(state, name)
    how = "restart" if was_reader else "rewind"
    try:  # its prepare, where it runs, rewinds an ex-writer and points it at the writer
        PostgresNode(name).start(state)
        database.wait_streaming(state, name)
    except Exception as error:
        if not database.answers(state, state.writer.name):  # nothing to clone from: keep its data
            writer = state.writer.name
            raise RuntimeError(f"{name} cannot rejoin: the writer {writer} is down") from error
        how = "clone"  # a rewound node that won't start is re-cloned, not rewound again
        PostgresNode(name).stop(state)
        runtime.of(state).tool(state, ["rm", "-rf", node.data_dir], user=state.service_user or None)
        PostgresNode(name).start(state)  # without data, a reader starts by cloning the writer
        database.wait_streaming(state, name)
    if state.replication == "sync":
        database.set_replication(state, "sync")
        _wait_synchronous(state, name)
    state.save()
    events.record(state, "reader-rejoined", f"{name} rejoined as reader ({how})", method=how)
    return how


def _wait_synchronous(state: StackState, name: str) -> None:
    """Until the writer counts ``name`` as its synchronous standby. The setting takes effect when
    the walsender rereads the configuration, a moment after the reload: until then commits do
    not wait for the reader, so "rejoined" must not be said before it."""

    def synchronous() -> bool:
        return database.replication_status(state)[name].get("sync") == "sync"

    process.wait_until(synchronous, timeout=SYNCHRONOUS_TIMEOUT, what=f"{name} synchronous")


def clear_stale_lock(state: StackState, name: str) -> None:
    """A SIGKILLed postmaster leaves postmaster.pid behind; once it is dead the file is a lie."""
    pid_file = Path(state.nodes[name].data_dir, "postmaster.pid")
    if pid_file.exists() and name not in state.pids:
        pid = int(pid_file.read_text().splitlines()[0])
        runtime.of(state).exited(state, name, pid, 10)
        pid_file.unlink(missing_ok=True)
        port = state.nodes[name].port
        Path(state.nodes[name].data_dir).parent.joinpath(f".s.PGSQL.{port}.lock").unlink(
            missing_ok=True
        )
