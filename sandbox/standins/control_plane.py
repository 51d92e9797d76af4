"""The Aurora control plane stand-in: it watches every node and repairs the cluster unasked.

Aurora notices a writer that stopped answering and fails over to a replica by itself ("typically
less than 60 seconds, and often less than 30 seconds"), and restarts an instance that died. This
process does the same for the PostgreSQL nodes, in three steps kept apart, as Patroni keeps
deciding (``ha.py``) apart from doing (``postgresql/``):

watch   each tick, every node on its own port, not through the proxy: is its process alive, does
        it accept a connection and answer a query within `database.ANSWER_SECONDS`. The writer
        also says which readers replicate from it, and which of them synchronously.
decide  `decide`, a pure function of what was seen and what is remembered: nothing, fail over,
        restart the writer in place, or rejoin a reader. The writer must have stopped answering
        for the whole detection window, and only a reader that the writer last listed as
        synchronous may take over under sync replication: that reader has applied every
        acknowledged commit (``remote_apply``). Under async replication any streaming reader may,
        and a drill counts what that loses. With no such reader the writer is restarted in place,
        as Aurora restarts a cluster's only instance: its data is all there.
do      `sandbox.standins.aurora.cluster`, under the cluster lock, so a `sandbox failover` and
        an automatic one never race: fence the old writer (SIGKILL, so a frozen one can never
        take another write), promote, repoint and resume the proxy, then rejoin the old writer as
        a reader.

It also restarts the managed services around the cluster that AWS keeps running for you: the
proxy (RDS Proxy), the consumer runner (Lambda's event source mapping), the API gateway,
LocalStack (SQS, Secrets Manager, CloudWatch: what it held comes back from the SQS stand-in's
journal, `sandbox.standins.resources`) and the dashboard, when one has died (for
`SERVICE_DEAD_SECONDS`) or stopped answering (for `SERVICE_SILENT_SECONDS`) without having been
stopped on purpose: a stop takes its pid off record, a crash or a kill from outside does not.
Natively its keeper (`sandbox.standins.keeper`) restarts the control plane itself, and it
restarts the keeper; on the Compose profile the engine's restart policies do both jobs: there it
leaves a managed service that is down to the engine, records its restart once it answers again
(the engine restarts silently), and still restores LocalStack when it is back empty.

While someone else holds the cluster lock (a drill's announced failover, `sandbox failover`),
it only watches. What it is doing is in ``<run dir>/control-plane.json`` (the phase, since when,
a heartbeat) for `sandbox status` and the dashboard; what it did is in the cluster events.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg

from sandbox.platform import compose, process, runtime
from sandbox.platform.lifecycle import Component
from sandbox.platform.state import StackState, load
from sandbox.standins import resources
from sandbox.standins.api_gateway.component import GatewayService
from sandbox.standins.aurora import cluster, database, events
from sandbox.standins.aurora.database import PostgresNode
from sandbox.standins.aws_lambda.component import ConsumerRunner
from sandbox.standins.dashboard import Dashboard
from sandbox.standins.keeper import Keeper
from sandbox.standins.localstack import LocalStack
from sandbox.standins.rds_proxy import Proxy
from sandbox.standins.sqs import journal, restore

#: Between two looks at the nodes; a frozen node makes a look take `database.ANSWER_SECONDS`.
TICK_SECONDS = 0.5
#: A heartbeat older than this means the control plane itself is stuck (health, not a test wait).
STALE_SECONDS = 60.0
Phase = Literal["watching", "writer lost", "failing over", "rejoining", "repairing", "waiting"]
#: The managed services it restarts, by component name (the keeper: natively only).
SERVICES: dict[str, Component] = {
    service.name: service
    for service in (
        Proxy(),
        ConsumerRunner(),
        GatewayService(),
        LocalStack(),
        Dashboard(),
        Keeper(),
    )
}
#: A service whose process is gone is restarted this soon; one that runs but does not answer
#: (frozen, or too busy to) after this long, so a slow answer under load is not a restart.
SERVICE_DEAD_SECONDS = 1.0
SERVICE_SILENT_SECONDS = 15.0
#: A service that answered (its health check; on Compose its container, as the engine reports
#: it) is asked again after this long, not every tick: whether its process is alive is looked
#: at every tick (a crash is the common fault, and cheap to see), an HTTP round trip, a look for
#: the restored queue in LocalStack or an Engine API call is not needed twice a second.
ASK_EVERY_SECONDS = 2.0
#: The services a restart of which waits while the writer is lost (they would only find it
#: gone); the others (the API, LocalStack, the dashboard, the keeper) are restarted meanwhile.
NEEDS_THE_WRITER = ("proxy", "consumer")
#: The SQS stand-in's journal is compacted (committed orders dropped) at most this often, once
#: it holds more than `COMPACT_BYTES`: a restore then reads little, holding the sends back less.
COMPACT_EVERY_SECONDS = 60.0
COMPACT_BYTES = 1 << 20
Health = Literal["ok", "dead", "silent"]


@dataclass(frozen=True)
class Seen:
    """One node at one look."""

    alive: bool
    answers: bool = False
    in_recovery: bool = False
    replicas: dict[str, str] = field(default_factory=dict)  # the writer's: reader -> sync_state


@dataclass
class Memory:
    """What the control plane remembers between looks, about the current writer."""

    writer: str = ""
    writer_lost_since: float | None = None
    #: Readers that may take over: at the writer's last answer, synchronous (async: streaming).
    eligible: tuple[str, ...] = ()
    reader_lost_since: dict[str, float] = field(default_factory=dict)
    service_lost_since: dict[str, float] = field(default_factory=dict)

    def forget(self, writer: str | None = None) -> None:
        """Start the windows afresh, after a failover or repair (anyone's). Which readers may
        take over is kept while the writer stays the same (a writer that dies right after a
        repair is still failed over); a new writer is watched from nothing."""
        if writer is not None and writer != self.writer:
            self.writer, self.eligible = writer, ()
        self.writer_lost_since = None
        self.reader_lost_since.clear()
        self.service_lost_since.clear()


@dataclass(frozen=True)
class Action:
    kind: Literal["fail over", "restart writer", "rejoin reader", "restart service", "restore"]
    node: str  # the reader to promote, or the node or service to restart or rejoin
    why: str
    since: float  # when the trouble was first seen


def watch(state: StackState, name: str) -> Seen:
    if not runtime.alive(state, name):
        return Seen(alive=False)

    def look(conn: psycopg.Connection) -> Seen:
        in_recovery = bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
        replicas = (
            {}
            if in_recovery
            else dict(conn.execute("SELECT application_name, sync_state FROM pg_stat_replication"))
        )
        return Seen(True, True, in_recovery, replicas)

    try:
        return database.quickly(state, name, look)
    except psycopg.Error:
        return Seen(alive=True)


def decide(
    state: StackState,
    seen: dict[str, Seen],
    memory: Memory,
    now: float,
    services: dict[str, Health] | None = None,
    unrestored: bool = False,
) -> Action | None:
    """What to do about what was seen (nodes by name, ``services`` by health, ``unrestored``:
    LocalStack answers without the stack's queue); updates ``memory``. Pure, no I/O: it is
    unit-tested on made-up looks."""
    window = state.control_plane.detection_seconds
    writer = state.writer.name
    if memory.writer != writer:
        memory.forget(writer)
    looked = seen[writer]
    if looked.answers and not looked.in_recovery:
        memory.writer_lost_since = None
        wanted = ("sync",) if state.replication == "sync" else ("sync", "async", "potential")
        memory.eligible = tuple(sorted(r for r, how in looked.replicas.items() if how in wanted))
    else:
        since = memory.writer_lost_since = memory.writer_lost_since or now
        if now - since < window:  # meanwhile what needs no database is still repaired
            independent = {k: v for k, v in (services or {}).items() if k not in NEEDS_THE_WRITER}
            return _service_action(memory, independent, now, unrestored)
        why = f"writer {writer} {_trouble(looked)} for {now - since:.1f} s"
        for reader in memory.eligible:
            if seen[reader].answers and seen[reader].in_recovery:
                return Action("fail over", reader, why, since)
        return Action(
            "restart writer", writer, f"{why}; no reader has every acknowledged commit", since
        )
    for reader in state.readers:
        looked = seen[reader.name]
        if looked.answers and looked.in_recovery and reader.name in seen[writer].replicas:
            memory.reader_lost_since.pop(reader.name, None)
            continue
        since = memory.reader_lost_since.setdefault(reader.name, now)
        if now - since >= window:
            why = f"reader {reader.name} {_trouble(looked)} for {now - since:.1f} s"
            return Action("rejoin reader", reader.name, why, since)
    return _service_action(memory, services or {}, now, unrestored)


def _service_action(
    memory: Memory, services: dict[str, Health], now: float, unrestored: bool
) -> Action | None:
    for name in set(memory.service_lost_since) - set(services):
        del memory.service_lost_since[name]  # taken off record (stopped on purpose) meanwhile
    for name, health in services.items():
        if health == "ok":
            memory.service_lost_since.pop(name, None)
            continue
        since = memory.service_lost_since.setdefault(name, now)
        wait = SERVICE_DEAD_SECONDS if health == "dead" else SERVICE_SILENT_SECONDS
        if now - since >= wait:
            how = "down" if health == "dead" else "not answering"
            why = f"{name} {how} for {now - since:.1f} s"
            return Action("restart service", name, why, since)
    if unrestored and services.get("aws", "ok") == "ok":
        return Action("restore", "aws", "LocalStack answers without the queue", now)
    return None


def _trouble(looked: Seen) -> str:
    if not looked.alive:
        return "is down"
    if not looked.answers:
        return "has not answered"
    return "is not replicating"


class ControlPlane:
    """The loop: watch, decide, do; and say what it is doing."""

    def __init__(self, state: StackState) -> None:
        self.state = state
        self.memory = Memory()
        self.phase: Phase = "watching"
        self.detail = ""
        self.since = time.time()
        self.detection = state.control_plane.detection_seconds
        self.written = threading.Lock()
        #: On Compose: each managed service's container as last seen, and those the engine has
        #: restarted that do not answer yet, with when they went down.
        self.runs: dict[str, compose.Run] = {}
        self.back: dict[str, float] = {}
        self.compacted = time.time()
        #: When each service (and "restored": LocalStack's queue) last answered well.
        self.answered: dict[str, float] = {}

    def tick(self) -> None:
        state = self.state
        state.refresh()
        busy = cluster.holder(state)
        if busy:  # someone else's failover or repair: its outage is not ours to end
            self.memory.forget()
            self.say("waiting", f"{busy} holds the cluster")
            return
        seen = {name: watch(state, name) for name in state.nodes}
        services = self.services()
        unrestored = services.get("aws") == "ok" and not self.asked(
            "restored", lambda: not resources.missing(state)
        )
        action = decide(state, seen, self.memory, time.time(), services, unrestored)
        if action is None:
            if self.memory.writer_lost_since:
                self.say("writer lost", f"{state.writer.name} not answering")
            else:
                self.say("watching", "")
                self.compact()
            return
        try:
            with cluster.exclusive(state, "the control plane", wait=False):
                if state.writer.name == self.memory.writer:  # nobody failed over meanwhile
                    self.act(action)
        except cluster.Busy:
            pass
        if action.kind in ("restart service", "restore"):  # the writer's window runs on
            self.memory.service_lost_since.clear()
        else:
            self.memory.forget()

    def compact(self) -> None:
        """The journal's committed orders dropped, now and then (`COMPACT_EVERY_SECONDS`)."""
        if time.time() - self.compacted < COMPACT_EVERY_SECONDS:
            return
        self.compacted = time.time()
        with contextlib.suppress(FileNotFoundError):
            if journal.path(self.state.run_dir).stat().st_size > COMPACT_BYTES:
                dropped = restore.compact(self.state)
                print(f"journal compacted: {dropped} committed order(s) dropped", flush=True)

    def services(self) -> dict[str, Health]:
        """The managed services' health. Only a service whose pid is on record: one that
        `sandbox` stopped (or killed as a drill's announced fault) is not running by choice.
        On Compose one that is down is the engine's to restart (its restart policy): left out,
        as is one the engine (re)started and that does not answer yet, for as long as a start
        may take (`Component.start_timeout`: on a busy machine the API takes over 15 s)."""
        state = self.state
        found: dict[str, Health] = {}
        for name, service in SERVICES.items():
            if name not in state.pids or (name == "keeper" and state.runtime != "native"):
                continue
            if state.runtime == "compose":
                if self.fresh(name):  # answered lately: no engine call either
                    found[name] = "ok"
                    continue
                run = compose.Compose().run(state, name)
                if run is None:
                    continue
                ok = self.asked(name, functools.partial(service.healthy, state))
                self.engine_restarted(name, run, "ok" if ok else "silent")
                starting = time.time() - run.started < service.start_timeout
                if ok or not starting:
                    found[name] = "ok" if ok else "silent"
            elif not runtime.alive(state, name):
                self.answered.pop(name, None)
                found[name] = "dead"
            else:
                ok = self.asked(name, functools.partial(service.healthy, state))
                found[name] = "ok" if ok else "silent"
        return found

    def fresh(self, name: str) -> bool:
        """Whether ``name`` answered well within `ASK_EVERY_SECONDS`."""
        return time.time() - self.answered.get(name, 0.0) < ASK_EVERY_SECONDS

    def asked(self, name: str, check: Callable[[], object]) -> bool:
        """``check``'s verdict, or yes without asking if it said yes `ASK_EVERY_SECONDS` ago."""
        if self.fresh(name):
            return True
        if process.passes(check):
            self.answered[name] = time.time()
            return True
        self.answered.pop(name, None)
        return False

    def engine_restarted(self, name: str, run: compose.Run, health: Health) -> None:
        """On Compose: a service's container that the engine restarted since the last look (the
        same container, restarted more often) is recorded as lost when its server died and
        restarted once it answers, as natively when this process restarts it."""
        last = self.runs.get(name)
        self.runs[name] = run
        if last is not None and last.container != run.container:
            self.back.pop(name, None)  # recreated by the sandbox: its own events say so
        elif last is not None and run.restarts > last.restarts:
            self.back.setdefault(name, run.exited)
        if name in self.back and health == "ok":
            lost = self.back.pop(name)
            state = self.state
            why = f"{name} down (its server exited); restarted by the engine"
            events.record(state, "service-lost", why, node=name, since=lost)
            events.record(state, "service-restarted", f"{name} restarted", node=name, lost=lost)

    def restarted_itself(self) -> None:
        """On Compose, at its start: a container the engine restarted (its server, this
        process's predecessor, had died) is recorded as lost and restarted, as its keeper
        records it natively."""
        run = compose.Compose().run(self.state, "control-plane")
        if run is not None and run.restarts:
            why = "control-plane down (its server exited); restarted by the engine"
            events.record(self.state, "service-lost", why, node="control-plane", since=run.exited)
            events.record(
                self.state,
                "service-restarted",
                "control-plane restarted",
                node="control-plane",
                lost=run.exited,
            )

    def act(self, action: Action) -> None:
        state = self.state
        old = state.writer.name
        if action.kind == "fail over":
            events.record(state, "writer-lost", action.why, node=old, since=action.since)
            self.say("failing over", f"{old} -> {action.node}")
            cluster.take_over(state, action.node, state.control_plane.pause_seconds, action.why)
            self.say("rejoining", f"{old} as a reader")
            cluster.rejoin_as_reader(state, old)
        elif action.kind == "restart writer":
            events.record(state, "writer-lost", action.why, node=old, since=action.since)
            self.say("repairing", f"restarting the writer {old} in place")
            restart_writer(state, old)
        elif action.kind == "rejoin reader":
            events.record(state, "reader-lost", action.why, node=action.node, since=action.since)
            self.say("rejoining", f"{action.node} as a reader")
            rejoin_reader(state, action.node)
        elif action.kind == "restore":
            self.say("repairing", "restoring the queue and the DLQ from the journal")
            restore_localstack(state)
        else:
            events.record(state, "service-lost", action.why, node=action.node, since=action.since)
            self.say("repairing", f"restarting {action.node}")
            service = SERVICES[action.node]
            service.restart(state)
            if action.node == "aws":
                service.wait(state)
                restore_localstack(state)
            state.save()
            events.record(
                state,
                "service-restarted",
                f"{action.node} restarted",
                node=action.node,
                lost=action.since,
            )

    def say(self, phase: Phase, detail: str) -> None:
        """Say what it is doing; the phase's start is kept while it lasts."""
        if (phase, detail) != (self.phase, self.detail):
            self.phase, self.detail, self.since = phase, detail, time.time()
            print(f"{phase}{': ' if detail else ''}{detail}", flush=True)
        self.beat()

    def beat(self) -> None:
        """Write the status file (atomically) with a fresh heartbeat: from each tick, and from
        a thread every second, so a long rejoin or clone never looks like a dead control plane.

        ``eligible``: the readers it would promote if the writer were lost now, for `sandbox
        failover` to ask and a test to wait for."""
        with self.written:
            report = {
                "phase": self.phase,
                "detail": self.detail,
                "since": self.since,
                "heartbeat": time.time(),
                "writer": self.memory.writer,  # not the state: another thread may be changing it
                "eligible": list(self.memory.eligible),
                "detection_seconds": self.detection,
            }
            target = status_path(self.state)
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(report))
            tmp.replace(target)


def restart_writer(state: StackState, name: str) -> None:
    """Fence the writer, then start it again on its own data (crash recovery replays its WAL)."""
    cluster.fence(state, name, f"writer {name} is restarted in place")
    cluster.clear_stale_lock(state, name)
    PostgresNode(name).start(state)
    state.save()
    with contextlib.suppress(psycopg.OperationalError):  # a proxy that is down gets it later
        cluster.repoint_proxy(state)
    events.record(state, "writer-restarted", f"writer {name} restarted in place")


def restore_localstack(state: StackState) -> None:
    """LocalStack back empty: the secret, the queues with what they held, the alarm."""
    restored = resources.provision(state)
    state.save()
    if restored:
        details = dataclasses.asdict(restored)
        events.record(state, "queue-restored", restored.words(), node="aws", **details)


def rejoin_reader(state: StackState, name: str) -> None:
    """Fence a reader in trouble (dead, frozen, cut off, not replicating) and start it again
    as one, after the writer let go of whatever is left of its stream to the old one."""
    cluster.kill_node(state, name)
    with contextlib.suppress(psycopg.Error):  # a writer that is down too: nothing to end
        database.end_streams_to(state, name)
    cluster.rejoin_as_reader(state, name, was_reader=True)


def status_path(state: StackState) -> Path:
    return state.path("control-plane.json")


def status(state: StackState) -> dict[str, Any] | None:
    """What the control plane last said it was doing; None if it never said anything."""
    try:
        return json.loads(status_path(state).read_text())
    except (FileNotFoundError, ValueError):
        return None


def describe(said: dict[str, Any]) -> str:
    """Its status in one line, for `sandbox status` and the dashboard alike."""
    since = time.strftime("%H:%M:%S", time.localtime(said["since"]))
    detail = f" ({said['detail']})" if said.get("detail") else ""
    return f"control plane: {said['phase']}{detail} since {since}"


@dataclass
class ControlPlaneService(Component):
    """The control plane as a stack component: a ``python -m sandbox.standins.control_plane``
    process, which watches what is already there."""

    name: str = "control-plane"
    title = "the control plane"

    def command(self, state: StackState) -> process.Command:
        return process.module_command(
            "sandbox.standins.control_plane", state.run_dir, "control-plane"
        )

    def stop(self, state: StackState) -> None:
        """Its keeper first, which would start it again; then itself."""
        Keeper().stop(state)
        state.save()
        super().stop(state)

    def ready(self, state: StackState, since: float) -> bool:
        return (status(state) or {}).get("heartbeat", 0) >= since  # a beat of this start's

    def healthy(self, state: StackState) -> bool:
        said = status(state) or {}
        # Its heartbeat, not its pid: in a container its pid is the container's own.
        return (
            runtime.alive(state, self.name)
            and time.time() - said.get("heartbeat", 0) < STALE_SECONDS
        )


def main() -> None:
    state = load(Path(os.environ["SANDBOX_RUN_DIR"]))
    plane = ControlPlane(state)
    stopping = process.on_stop()
    events.record(
        state,
        "control-plane-started",
        f"control plane watching (detection window {state.control_plane.detection_seconds:g} s)",
    )
    print(f"watching {', '.join(state.nodes)}", flush=True)
    if state.runtime == "native" and not runtime.alive(state, "keeper"):
        Keeper().start(state)  # who restarts this process if it dies
        state.save()

    def heartbeat() -> None:
        while not stopping.is_set():
            with contextlib.suppress(Exception):
                plane.beat()
            time.sleep(1.0)

    threading.Thread(target=heartbeat, name="heartbeat", daemon=True).start()
    if state.runtime == "compose":
        with contextlib.suppress(Exception):  # an engine that does not answer: no event
            plane.restarted_itself()
    while not stopping.is_set():
        try:
            plane.tick()
        except Exception as error:  # logged, and tried again: the control plane must not die
            print(f"tick failed: {type(error).__name__}: {error}", flush=True)
            plane.memory.forget()
        time.sleep(TICK_SECONDS)


if __name__ == "__main__":
    main()
