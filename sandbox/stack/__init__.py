"""The whole stack: its components in start order, declared once, and bring it up, repair it,
take it down.

Every component is a `sandbox.platform.lifecycle.Component` (LocalStack, the two PostgreSQL
nodes, PgBouncer, the gateway, the consumer runner, the control plane, the dashboard): it says
what runs and how to tell it answers, and its start hands it to the stack's runtime
(`sandbox.platform.runtime`), which runs it where the stack's servers run: native processes on
loopback by default, or the Compose profile's containers, which run the same commands. The
functions, the CLI and the tests never know which runtime they talk to.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import shutil
import signal
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sandbox.platform import compose, network, process, runtime
from sandbox.platform.hints import command as hint
from sandbox.platform.lifecycle import Component
from sandbox.platform.state import (
    ControlPlaneSettings,
    Node,
    NotRunning,
    StackState,
    load,
    private_dir,
    run_dir,
)
from sandbox.spec.choices import RuntimeName
from sandbox.spec.errors import StackError
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings
from sandbox.standins import cognito, control_plane, localstack, resources
from sandbox.standins.api_gateway.component import GatewayService
from sandbox.standins.aurora import cluster, database, events
from sandbox.standins.aurora.database import PostgresNode
from sandbox.standins.aws_lambda.component import ConsumerRunner
from sandbox.standins.control_plane import ControlPlaneService
from sandbox.standins.dashboard import Dashboard
from sandbox.standins.localstack import LocalStack
from sandbox.standins.rds_proxy import Proxy
from sandbox.standins.sqs import depth

DEFAULT_PORTS = {
    "n1": 15432,
    "n2": 15433,
    "proxy": 16432,
    "aws": 14566,
    "api": 18080,
    "dashboard": 18501,
}
Report = Callable[[str], None]


#: Provisioning's place in the start order: once the nodes, the proxy and LocalStack answer.
PROVISION = "provision"

#: The start order, declared once (compose/docker-compose.yml's ``depends_on`` declares the same
#: for its services, and a test holds the two together): what starts, and what `up` says then.
START_ORDER: tuple[tuple[Component | str, str], ...] = (
    (LocalStack(), "starting LocalStack (SQS, Secrets Manager, CloudWatch)"),
    (PostgresNode("n1"), "creating the writer n1 (initdb, roles, schema)"),
    (PostgresNode("n2"), "cloning the reader n2 (pg_basebackup) and streaming"),
    (Proxy(), "starting PgBouncer (the RDS Proxy stand-in)"),
    (PROVISION, "creating the queue, the DLQ, its alarm, the DB secret and the user pool"),
    (GatewayService(), "starting the API gateway"),
    (ConsumerRunner(), "starting the consumer runner"),
    (
        ControlPlaneService(),
        "starting the Aurora control plane (detects a failed writer, fails over)",
    ),
    (Dashboard(), "starting the dashboard"),
)


def components() -> list[Component]:
    """In start order; stopped in reverse."""
    return [step for step, _ in START_ORDER if isinstance(step, Component)]


def component(name: str) -> Component:
    return next(c for c in components() if c.name == name)


@dataclass
class Options:
    """What `sandbox up` can change. The defaults are the guidance's."""

    queue: QueueSettings = field(default_factory=QueueSettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    control_plane: ControlPlaneSettings = field(default_factory=ControlPlaneSettings)
    replication: str = "sync"
    auto_ports: bool = False
    runtime: RuntimeName = "native"  # where the servers run: native or compose
    consumer: str = "sandbox"  # the write functions' profile (`sandbox.spec.profiles`)


def health(state: StackState) -> dict[str, bool]:
    state.refresh()  # the control plane or a repair may have restarted something since
    return {item.name: _healthy(item, state) for item in components()}


def _healthy(item: Component, state: StackState) -> bool:
    return process.passes(functools.partial(item.healthy, state))


def up(
    options: Options, report: Report = print, directory: Path | None = None
) -> tuple[StackState, bool]:
    """Start the stack; returns (state, started). Already up: nothing changes, started is False.

    A stack that is partly up, or whose processes all died (a reboot, a crash) but whose data
    is still there, is repaired in place (`repair`): started is False then too, and the queue,
    the DLQ and the database keep what they hold. ``directory`` is the run dir (default:
    `run_dir()`); a second one runs a second stack.
    """
    if options.runner.function_timeout_seconds > options.queue.visibility_timeout_seconds:
        raise StackError(
            "the function timeout must not exceed the queue's visibility timeout (Lambda refuses "
            "such a mapping: a message would reappear while still being processed)"
        )
    directory = directory or run_dir()
    with contextlib.suppress(NotRunning):
        state = load(directory)
        if any(runtime.alive(state, name) for name in state.pids) or _has_data(state):
            repair(state, report)
            return state, False
        _remove(state)  # a start that failed before the writer had data: nothing to keep
    if network.in_container():  # the CLI service repairs a stack; the file starts one
        raise StackError(
            f"no stack in {directory}: start it from the host, "
            "`docker compose -f compose/docker-compose.yml up -d --wait`"
        )
    state = _new_state(options, directory)
    runtime.of(state).ready(state, report)
    state.save()
    try:
        if state.runtime == "compose":
            _compose_up(state, report)
        else:
            _native_up(state, report)
    except BaseException:
        state.save()
        report("start failed: stopping what was started")
        stop_all(state)
        _remove(state)  # nothing was acknowledged yet: the next `up` starts afresh
        raise
    state.save()
    return state, True


def _native_up(state: StackState, report: Report) -> None:
    """`START_ORDER`, one server at a time."""
    for step, words in START_ORDER:
        if isinstance(step, str):  # PROVISION
            report("waiting for LocalStack")  # started first: the nodes started meanwhile
            component("aws").wait(state)
            report(words)
            provision(state)
        else:
            report(words)
            step.start(state)


def _compose_up(state: StackState, report: Report) -> None:
    """The compose file's own start order (``docker compose up --wait``): its one-shot
    ``setup`` finds this state, ``init`` provisions the stack as `provision` does here."""
    report(
        "starting the containers in the file's order (docker compose up --wait): setup, "
        "LocalStack and the nodes (n1 initialises, n2 clones), PgBouncer, init (queue, DLQ, "
        "alarm, secret, user pool), then the API, consumer, control plane and dashboard"
    )
    runtime.of(state).launch(state)
    state.refresh()  # what the containers wrote: the queue's URL, the secret, the pids
    if not state.client_id:
        raise StackError(f"the stack's init did not finish: see {state.run_dir}/logs")


def provision(state: StackState) -> None:
    """Once the nodes, the proxy and LocalStack answer: the synchronous reader, the queue, the
    DLQ, its alarm, the DB secret, the user pool. Safe to run again (the Compose profile's
    ``init`` runs at every ``docker compose up``): what exists is kept."""
    database.set_replication(state, state.replication)
    _provision(state)
    if not state.client_id:  # a new pool would invalidate every token handed out
        cognito.create_pool(state)
    state.save()


#: What `repair` does about each component that is down, in words for its report.
REPAIRS = {
    "aws": "restarting LocalStack, its queue and DLQ restored from the journal",
    "proxy": "restarting PgBouncer, pointed at the writer",
    "api": "restarting the API gateway",
    "consumer": "restarting the consumer runner",
    "control-plane": "restarting the Aurora control plane",
    "dashboard": "restarting the dashboard",
}


def repair(state: StackState, report: Report = print) -> list[str]:
    """Start again whatever is down, in start order; returns their names (none: a no-op).

    The queue, the DLQ and the database are left as they are. A node is repaired under the
    cluster lock, as the control plane repairs it, so the two never race: a writer restarts in
    place on its own data, a reader rejoins (pg_rewind, or a clone). LocalStack keeps its
    queues in memory: a restarted one gets back every acknowledged message that was not
    committed, from the SQS stand-in's journal (`sandbox.standins.sqs.restore`).
    """
    repaired = []
    found = health(state)
    # The writer first (a reader rejoins from it), then the reader; then the rest in start
    # order, LocalStack after the nodes: counting what died with it reads the database.
    order = [state.writer.name, *(n.name for n in state.readers)]
    for name in sorted(found, key=lambda name: order.index(name) if name in order else 9):
        if found[name] and not (name == "aws" and _unrestored(state)):
            continue
        if name in state.nodes:
            with cluster.exclusive(state, "sandbox up"):
                if database.answers(state, name):  # the control plane was quicker
                    continue
                if state.nodes[name].role == "writer":
                    report(f"repairing {name}: restarting the writer in place")
                    control_plane.restart_writer(state, name)
                else:
                    report(f"repairing {name}: rejoining it as a reader")
                    control_plane.rejoin_reader(state, name)
        elif name == "aws":
            _repair_localstack(state, report)
        else:
            with cluster.exclusive(state, "sandbox up"):  # the control plane restarts some too
                item = component(name)
                if _healthy(item, state):  # restarted meanwhile, by it or by a repair before
                    continue
                report(f"repairing {name}: {REPAIRS[name]}")
                item.restart(state)  # whatever is left of it (a hung process) goes first
        state.save()
        repaired.append(name)
    return repaired


def _repair_localstack(state: StackState, report: Report) -> None:
    """Start LocalStack again; what it held comes back from the SQS stand-in's journal. Under
    the cluster lock, as the control plane restarts it: the two never start it twice."""
    item = LocalStack()
    with cluster.exclusive(state, "sandbox up"):
        if _healthy(item, state) and not _unrestored(state):
            return  # restarted and restored meanwhile
        report(f"repairing aws: {REPAIRS['aws']}")
        if not _healthy(item, state):
            item.restart(state)
            item.wait(state)
        restored = resources.provision(state)
        state.save()
    if restored:
        events.record(state, "queue-restored", restored.words(), **asdict(restored))
        report(restored.words())


def _unrestored(state: StackState) -> bool:
    """LocalStack answers without the stack's queue: it came back empty, and nobody restored it."""
    return process.passes(lambda: resources.missing(state))


def _has_data(state: StackState) -> bool:
    """True if the writer's data directory survived: a stack worth repairing, not removing."""
    return Path(state.writer.data_dir, "PG_VERSION").exists()


def _provision(state: StackState) -> None:
    resources.provision(state)


def _new_state(options: Options, root: Path) -> StackState:
    private_dir(root)
    logs = root / "logs"
    if logs.exists():  # a new stack starts new logs; the last stack's stay for a post-mortem
        shutil.rmtree(root / "logs.previous", ignore_errors=True)
        logs.rename(root / "logs.previous")
    ports = _free_ports() if options.auto_ports else _check_ports(DEFAULT_PORTS)
    if options.runtime == "compose":  # the image's service user makes the data (setup chowns)
        data = compose.host_data_root(root)
        return fresh_state(options, root, data, compose.SERVICE_USER, ports)
    user = process.service_user() or ""
    data = process.owned_dir(process.data_root(root, user or None), user or None)
    return fresh_state(options, root, data, user, ports)


def fresh_state(
    options: Options, root: Path, data: Path, user: str, ports: dict[str, int]
) -> StackState:
    """A stack not started yet: n1 the writer, n2 the reader, fresh passwords."""
    nodes = {
        name: Node(name=name, port=ports[name], role=role, data_dir=str(data / name))
        for name, role in (("n1", "writer"), ("n2", "reader"))
    }
    return StackState(
        run_dir=str(root),
        service_user=user,
        data_root=str(data),
        ports=ports,
        nodes=nodes,
        replication="async" if options.replication == "async" else "sync",
        queue=options.queue,
        runner=options.runner,
        control_plane=options.control_plane,
        bootstrapped=False,
        db_password=secrets.token_hex(16),
        admin_password=secrets.token_hex(16),
        runtime=options.runtime,
        project=compose.project_name(str(root)) if options.runtime == "compose" else "",
        consumer=options.consumer,
    )


def _check_ports(ports: dict[str, int]) -> dict[str, int]:
    for name, port in ports.items():
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise StackError(
                    f"port {port} ({name}) is in use: stop what holds it, "
                    f"or use `{hint('up --auto-ports')}`"
                )
    return dict(ports)


def _free_ports() -> dict[str, int]:
    holders = []
    for _ in DEFAULT_PORTS:
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holders.append(holder)
    ports = {name: h.getsockname()[1] for name, h in zip(DEFAULT_PORTS, holders, strict=True)}
    for holder in holders:
        holder.close()
    return ports


def queued(state: StackState) -> tuple[int, int]:
    """Messages in the queue and in the DLQ (visible + in flight)."""
    sqs = localstack.client(state, "sqs")
    return depth(sqs, state.queue_url).total, depth(sqs, state.dlq_url).total


def down(force: bool = False, report: Report = print, directory: Path | None = None) -> None:
    """Stop everything and remove its data. Refuses while messages wait, unless ``force``, and in
    a container (the Compose profile's CLI service), after saying whether messages wait."""
    state = load(directory)
    in_queue = in_dlq = 0
    if not force or network.in_container():
        with contextlib.suppress(Exception):  # LocalStack is down: its messages are gone already
            in_queue, in_dlq = queued(state)
    waiting = f"{in_queue} message(s) in the queue and {in_dlq} in the DLQ would be lost"
    if network.in_container():  # the CLI service: a container of the project it would remove
        raise StackError(
            (f"{waiting}; " if in_queue or in_dlq else "")
            + "a container cannot take its own stack down: from the host, `docker compose -f "
            f"compose/docker-compose.yml -p {state.project} down -v` (the volumes go with it)"
        )
    if (in_queue or in_dlq) and not force:
        raise StackError(
            f"{waiting}: drain or redrive them, or force with `make down FORCE=1` "
            f"(`{hint('down --force')}`)"
        )
    stop_all(state, report)
    _remove(state)


def stop_all(state: StackState, report: Report = print) -> None:
    """Every component, in reverse start order, under the cluster lock: a restart the control
    plane or its keeper has begun ends first (its new pid on record, so it is stopped too)."""
    with cluster.exclusive(state, "sandbox down"):
        for item in reversed(components()):
            if item.name in state.pids:
                report(f"stopping {item.name}")
                item.stop(state)
                state.save()  # off record at once: the control plane restarts what is on record
    runtime.of(state).remove(state, report)


def _remove(state: StackState) -> None:
    """Delete the stack's data; keep its logs for a post-mortem."""
    shutil.rmtree(state.data_root, ignore_errors=True)
    for part in ("state.json", "identity", "localstack", "sqs"):
        target = Path(state.run_dir, part)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def start(state: StackState, name: str) -> None:
    """Start one component (after a crash or a stop) and record its new pid; a no-op if it is
    up. Under the cluster lock: the control plane may be restarting the same one."""
    item = component(name)
    with cluster.exclusive(state, f"starting {name}"):
        if _healthy(item, state):
            return
        item.start(state)
        state.save()


def stop(state: StackState, name: str) -> None:
    """Stop one component on purpose, under the cluster lock (as `start`): a restart of it the
    control plane has begun ends first, and it does not start it again (off record)."""
    with cluster.exclusive(state, f"stopping {name}"):
        component(name).stop(state)
        state.save()


def restart(state: StackState, name: str) -> None:
    stop(state, name)
    start(state, name)


def kill(state: StackState, name: str, sig: int = signal.SIGKILL) -> None:
    """Crash a component: ``sig`` to all its processes, no chance to clean up."""
    cluster.kill_node(state, name, sig)
