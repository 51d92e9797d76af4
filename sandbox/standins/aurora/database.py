"""The Aurora stand-in: a PostgreSQL primary (the writer) and a streaming replica (the reader).

Synchronous replication with ``remote_apply`` by default, so a commit is acknowledged only once the
reader has applied it, which is what lets a failover lose no acknowledged write (Aurora gets the
same from its quorum storage). Each node runs as the unprivileged service user.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shlex
import shutil
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from sandbox.platform import network, process, runtime
from sandbox.platform.hints import command as hint
from sandbox.platform.lifecycle import Component
from sandbox.platform.runtime import pg
from sandbox.platform.state import Node, StackState
from sandbox.spec import profiles

SETTINGS = """
listen_addresses = '{listen}'
wal_level = replica
wal_log_hints = on                 # lets pg_rewind turn an old writer into a reader
hot_standby = on
max_wal_senders = 10
wal_keep_size = 64MB
wal_retrieve_retry_interval = 100ms
synchronous_commit = remote_apply  # ack once the reader has applied the commit
password_encryption = scram-sha-256
shared_buffers = 32MB
max_connections = 100
log_min_messages = warning
log_line_prefix = '%m [%p] %q%a '
"""
HBA = """
local all all trust
host all all {clients} scram-sha-256
host replication replicator {clients} scram-sha-256
"""


def settings(state: StackState) -> str:
    """postgresql.conf's additions: listening where this stack's servers listen."""
    return SETTINGS.format(listen=state.bind_host)


def hba(state: StackState) -> str:
    """pg_hba.conf: passwords from this stack's network only."""
    return HBA.format(clients=network.clients(state.runtime))


@dataclass
class PostgresNode(Component):
    """One node (an Aurora DB instance): its data where it runs, its server, its health."""

    name: str
    start_timeout = 600.0  # a first start in a container initialises or clones first
    fatal = (runtime.ExitedEarly,)
    stop_signal = signal.SIGINT  # PostgreSQL's "fast" shutdown: roll back, checkpoint, exit

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"PostgreSQL {self.name}"

    def node(self, state: StackState) -> Node:
        return state.nodes[self.name]

    def prepare(self, state: StackState) -> None:
        """Give the node data if it has none, where it is about to run (natively here, in its
        container by `sandbox.stack.serve`), as a database image's entrypoint does: the first writer
        is initialised, a reader is cloned from the writer. A node with data starts on it: crash
        recovery, or what a rejoin's rewind left."""
        node = self.node(state)
        has_data = Path(node.data_dir, "PG_VERSION").exists()
        if node.role == "reader":
            needs_writer = not has_data or not Path(node.data_dir, "standby.signal").exists()
            if needs_writer:  # the nodes may start together (a whole stack's `up`)
                wait_for_writer(state, self.name)
            if not has_data:
                clone(state, self.name)
                return
            if needs_writer:  # a primary's data: the writer before a failover
                rewind(state, self.name)
            follow(state, self.name)  # the writer may have changed since it last ran
        elif not state.bootstrapped:  # whatever a first start that failed left goes
            shutil.rmtree(node.data_dir, ignore_errors=True)
            init_writer(state, self.name)
            state.bootstrapped = True  # from here on, a writer without data has lost it
            state.save()
        elif not has_data:  # an empty writer would hide every order the reader holds
            raise RuntimeError(
                f"the writer {self.name} has lost its data ({node.data_dir}): not starting an "
                f"empty one; fail over to the reader (`{hint('failover --mode crash')}`)"
            )

    def command(self, state: StackState) -> process.Command:
        node = self.node(state)
        argv = [
            pg("postgres"),
            "-D",
            node.data_dir,
            "-p",
            str(node.port),
            "-c",
            f"cluster_name={node.name}",
            "-c",
            f"unix_socket_directories={Path(node.data_dir).parent}",
        ]
        return process.Command(argv=argv, log=self.log(state), user=state.service_user or None)

    def log(self, state: StackState) -> Path:
        """Where its server writes (known without its binaries: the host may have none)."""
        return Path(state.data_root, f"{self.name}.log")

    def ready(self, state: StackState, since: float) -> bool:
        return runtime.running(state, self.name, self.log(state)) and self.healthy(state)

    def stop_timeout(self, state: StackState) -> float:
        return 20.0

    def healthy(self, state: StackState) -> bool:
        with connect(state, self.name, dbname="postgres", connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True


def connect(state: StackState, node: str, *, dbname: str | None = None, **kwargs: Any):
    """An admin (superuser) connection straight to one node, bypassing the proxy."""
    return psycopg.connect(
        host=state.host(node),
        port=state.nodes[node].port,
        dbname=dbname or state.db_name,
        user="postgres",
        password=state.admin_password,
        autocommit=True,
        **({"connect_timeout": 5} | kwargs),
    )


def init_writer(state: StackState, name: str) -> None:
    """initdb and configure the first writer, then create the roles, the database and the
    orders schema on a server that listens on its Unix socket only, stopped again after."""
    node = state.nodes[name]
    user = state.service_user or None
    pwfile = Path(state.data_root, "pwfile")
    pwfile.write_text(state.admin_password)
    process.chown(pwfile, user)
    process.run(
        [
            pg("initdb"),
            "-D",
            node.data_dir,
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--wal-segsize=1",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ],
        user=user,
    )
    pwfile.unlink()
    with Path(node.data_dir, "postgresql.conf").open("a") as conf:
        conf.write(settings(state))
    Path(node.data_dir, "pg_hba.conf").write_text(hba(state))
    socket_dir = str(Path(node.data_dir).parent.resolve())
    ctl = [pg("pg_ctl"), "-D", node.data_dir, "-w", "-t", "120", "-s"]
    options = f"-c listen_addresses='' -p {node.port} -k {shlex.quote(socket_dir)}"  # a shell's
    log = Path(state.data_root, f"{name}-init.log")
    try:
        process.run([*ctl, "-o", options, "-l", str(log), "start"], user=user, timeout=180)
        local = {"host": socket_dir, "port": node.port, "user": "postgres", "autocommit": True}
        with psycopg.connect(dbname="postgres", **local) as conn:
            conn.execute(
                f"CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '{state.admin_password}'"
            )
            conn.execute(f"CREATE ROLE {state.db_user} LOGIN PASSWORD '{state.db_password}'")
            conn.execute(f"CREATE DATABASE {state.db_name}")
        with psycopg.connect(dbname=state.db_name, **local) as conn:
            conn.execute(files("sandbox.spec").joinpath("schema.sql").read_text())
            if not profiles.named(
                state.consumer
            ).unique_order_id:  # the sample's table: a redelivery, a row
                conn.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
                conn.execute("CREATE INDEX orders_order_id ON orders (order_id)")
            conn.execute(grants(state.db_user, state.db_name))
    finally:  # also after a start that failed half-way: "no server running" is no error then
        process.run([*ctl, "-m", "fast", "stop"], user=user, check=False, timeout=180)


def grants(user: str, dbname: str) -> sql.Composed:
    """The application role's privileges, the least the functions need (``grants.sql``, which
    the AWS migration applies too)."""
    text = files("sandbox.spec").joinpath("grants.sql").read_text()
    return sql.SQL(text).format(app=sql.Identifier(user), db=sql.Identifier(dbname))


#: How long a reader's prepare waits for the writer it clones or rewinds from.
WRITER_WAIT_SECONDS = 300.0


def wait_for_writer(state: StackState, name: str) -> None:
    """Until the writer answers (bounded), for ``name`` to clone or rewind from it. Natively a
    writer whose process is gone will not answer: it fails at once, so a rejoin whose new writer
    died meanwhile (a second fault) ends, and the control plane restarts that writer, instead of
    waiting `WRITER_WAIT_SECONDS` with the cluster locked and no writer at all."""
    writer = state.writer.name

    def ready() -> bool:
        if state.runtime == "native" and not runtime.alive(state, writer):
            raise WriterGone(f"the writer {writer} is down: {name} has nothing to copy from")
        return answers(state, writer)

    process.wait_until(
        ready,
        timeout=WRITER_WAIT_SECONDS,
        interval=1.0,
        what=f"the writer {writer}, for {name} to copy from",
        fatal=WriterGone,
    )


class WriterGone(RuntimeError):
    """The writer a reader would copy from has no process any more."""


def clone(state: StackState, name: str) -> None:
    """Make ``name`` a copy of the writer that streams from it (pg_basebackup); it starts next."""
    writer = state.writer
    node = state.nodes[name]
    process.run(
        [
            pg("pg_basebackup"),
            "-h",
            state.peer_host(writer.name),
            "-p",
            str(writer.port),
            "-U",
            "replicator",
            "-D",
            node.data_dir,
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-password",
        ],
        user=state.service_user or None,
        env={"PGPASSWORD": state.admin_password},
        timeout=600,
    )
    follow(state, name)


def conninfo(state: StackState, name: str) -> str:
    """How reader ``name`` reaches the current writer."""
    return (
        f"host={state.peer_host(state.writer.name)} port={state.writer.port} user=replicator "
        f"password={state.admin_password} application_name={name}"
    )


def follow(state: StackState, name: str) -> None:
    """Configure a (stopped) node to stream from the current writer."""
    node = state.nodes[name]
    Path(node.data_dir, "standby.signal").touch()
    auto = Path(node.data_dir, "postgresql.auto.conf")
    kept = [
        line
        for line in auto.read_text().splitlines()
        if not line.startswith(("primary_conninfo", "synchronous_standby_names"))
    ]
    auto.write_text("\n".join([*kept, f"primary_conninfo = '{conninfo(state, name)}'", ""]))


def end_streams_to(state: StackState, name: str) -> None:
    """End the writer's replication connections to reader ``name`` (which has been fenced).

    A reader cut off the network leaves its stream half-open on the writer until
    ``wal_sender_timeout`` (60 s): listed first, that dead stream would stay the synchronous
    standby after the reader rejoins, and every commit wait on it."""
    with connect(state, state.writer.name, dbname="postgres") as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_replication "
            "WHERE application_name = %s",  # (waiting up to 5 s for each to end)
            (name,),
        )


def cut_replication(state: StackState, name: str) -> None:
    """Reader ``name`` stops receiving WAL: its replication connection is closed and not retried.

    A reader that has fallen behind: with asynchronous replication the writer still acknowledges
    commits, and whatever the reader has not received is what promoting it loses. (Closing the
    connection, rather than freezing the receiver, leaves no WAL in a socket buffer to arrive
    late.) `reconnect` undoes it; so does `follow`, when the node next becomes a reader.
    """
    with connect(state, name, dbname="postgres") as conn:
        conn.execute("ALTER SYSTEM SET primary_conninfo = ''")
        conn.execute("SELECT pg_reload_conf()")
        process.wait_until(
            lambda: conn.execute("SELECT count(*) FROM pg_stat_wal_receiver").fetchone()[0] == 0,
            timeout=10,
            what=f"{name} to stop receiving WAL",
        )


def reconnect(state: StackState, name: str) -> None:
    """Reader ``name`` streams from the writer again (after `cut_replication`)."""
    with connect(state, name, dbname="postgres") as conn:
        conn.execute(
            sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(conninfo(state, name))
        )
        conn.execute("SELECT pg_reload_conf()")
    wait_streaming(state, name)


def set_replication(state: StackState, mode: str) -> None:
    """sync: the writer waits for the reader to apply each commit; async: it does not wait."""
    names = ",".join(node.name for node in state.readers) if mode == "sync" else ""
    with connect(state, state.writer.name, dbname="postgres") as conn:
        conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
        conn.execute("SELECT pg_reload_conf()")
    state.replication = "sync" if mode == "sync" else "async"


def committed_by_node(state: StackState) -> dict[str, int]:
    """How many orders each node committed while it was the writer (``committed_node``), read
    on the writer: where the orders are, for `sandbox status` and the dashboard's picture."""
    with connect(
        state,
        state.writer.name,
        connect_timeout=ANSWER_SECONDS,
        options=f"-c statement_timeout={ANSWER_SECONDS * 1000}",
    ) as conn:
        rows = conn.execute(  # orders, not rows: the sample profile's table may hold a twice
            "SELECT committed_node, count(DISTINCT order_id) FROM orders GROUP BY 1"
        ).fetchall()
    return {node: int(count) for node, count in rows}


def replication_status(state: StackState) -> dict[str, dict[str, Any]]:
    """Each node's role and replication state, as the writer and the readers see it."""
    report: dict[str, dict[str, Any]] = {
        name: {"role": node.role, "up": False} for name, node in state.nodes.items()
    }
    for name in state.nodes:
        try:
            with connect(state, name, dbname="postgres", connect_timeout=2) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), "
                    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
                ).fetchone()
                report[name] |= {"up": True, "in_recovery": row[0]}
                if not row[0]:
                    for peer, st, sync, lag in conn.execute(
                        "SELECT application_name, state, sync_state, "
                        "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) "
                        "FROM pg_stat_replication"
                    ):
                        if peer in report:
                            report[peer] |= {"state": st, "sync": sync, "lag_bytes": int(lag or 0)}
        except psycopg.Error:
            continue
    return report


#: How long a node may take to accept a connection and answer a query before it counts as not
#: answering. libpq's connect_timeout has a floor of 2 s; a frozen (SIGSTOPped) node accepts
#: the TCP connection and then says nothing, so only the deadline notices it.
ANSWER_SECONDS = 2


def connect_quickly(state: StackState, name: str, dbname: str = "postgres") -> psycopg.Connection:
    """An admin connection to node ``name`` that must connect and answer each statement within
    `ANSWER_SECONDS`: a look at a node that may be dead, frozen or cut off. Use it through
    `quickly`: the statements' deadline is the server's, which a frozen server never keeps."""
    return connect(
        state,
        name,
        dbname=dbname,
        hostaddr=address_quickly(state.host(name)),
        connect_timeout=ANSWER_SECONDS,
        options=f"-c statement_timeout={ANSWER_SECONDS * 1000}",
    )


#: A whole look at a node: the name's lookup, the connection and its statements, each within
#: `ANSWER_SECONDS`.
LOOK_SECONDS = 3 * ANSWER_SECONDS


def quickly[T](
    state: StackState, name: str, work: Callable[[psycopg.Connection], T], dbname: str = "postgres"
) -> T:
    """``work`` on a `connect_quickly` connection to node ``name`` (its ``dbname``), all within
    `LOOK_SECONDS`, else `psycopg.OperationalError`. A node frozen after it accepted the
    connection answers no statement and never times one out: it held the control plane's look
    for good (in CI). The look's thread is left to end on its own, with its connection, once
    the node is fenced."""

    def look() -> T:
        with connect_quickly(state, name, dbname) as conn:
            return work(conn)

    return _within(LOOK_SECONDS, look, f"{name} did not answer")


def _within[T](seconds: float, work: Callable[[], T], what: str) -> T:
    """``work()``'s result (or its error) if it ends within ``seconds``, else
    `psycopg.OperationalError` saying ``what``; a thread that has not ended is left to."""
    result: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as error:  # handed to the caller, in its thread
            failed.append(error)

    worker = threading.Thread(target=run, daemon=True, name=what)
    worker.start()
    worker.join(seconds)
    if result:
        return result[0]
    if failed:
        raise failed[0]
    raise psycopg.OperationalError(f"{what} within {seconds:g} s")


def address_quickly(host: str) -> str:
    """``host``'s address, looked up within `ANSWER_SECONDS`, else `psycopg.OperationalError`.

    libpq's connect_timeout does not cover the name's lookup, and on the Compose profile a node
    cut off the network has no name on it any more: the engine's resolver took 20 s to say so
    (measured, Docker 20.10). An address needs no lookup (natively every node's, at every look
    of the control plane: no thread)."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host))
    try:
        return _within(ANSWER_SECONDS, lambda: socket.gethostbyname(host), f"{host}: no address")
    except OSError as error:  # no such name
        raise psycopg.OperationalError(f"{host}: {error}") from None


def answers(state: StackState, name: str) -> bool:
    """True if node ``name`` accepts a connection on its own port and answers within the
    deadline (a dead, frozen or unreachable node does not)."""
    try:
        quickly(state, name, lambda conn: conn.execute("SELECT 1"))
    except psycopg.Error:
        return False
    return True


def in_recovery(state: StackState, name: str) -> bool:
    """True if node ``name`` answers as a reader (in recovery), ready to be promoted."""
    try:
        return quickly(state, name, _recovering)
    except psycopg.Error:
        return False


def _recovering(conn: psycopg.Connection) -> bool:
    return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])


def is_streaming(state: StackState, name: str) -> bool:
    """True if the writer sees ``name`` streaming from it."""
    try:
        with connect(state, state.writer.name, dbname="postgres", connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_stat_replication WHERE application_name = %s "
                "AND state = 'streaming'",
                (name,),
            ).fetchone()
    except psycopg.Error:
        return False
    return row is not None


def wait_streaming(state: StackState, name: str, timeout: float = 30) -> None:
    process.wait_until(lambda: is_streaming(state, name), timeout=timeout, what=f"{name} streaming")


def wait_replayed(state: StackState, name: str, lsn: str, timeout: float = 30) -> None:
    """Until reader ``name`` has applied the WAL up to ``lsn`` (nothing acknowledged is missing)."""

    def caught_up() -> bool:
        with connect(state, name, dbname="postgres", connect_timeout=2) as conn:
            return conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[
                0
            ]

    process.wait_until(caught_up, timeout=timeout, interval=0.01, what=f"{name} replay")


def promote(state: StackState, name: str) -> None:
    """Make reader ``name`` the writer and record the new roles."""
    with connect(state, name, dbname="postgres") as conn:
        conn.execute("SELECT pg_promote(wait => false)")
        process.wait_until(
            lambda: not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0],
            timeout=30,
            interval=0.005,
            what=f"{name} promotion",
        )
        # Alone now: a writer waiting for a synchronous reader that isn't there would block.
        conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
        conn.execute("SELECT pg_reload_conf()")
    for node in state.nodes.values():
        node.role = "writer" if node.name == name else "reader"
    state.save()


def rewind(state: StackState, name: str) -> None:
    """Rewind a stopped ex-writer onto the current writer's timeline (pg_rewind), where the
    node runs: its prepare does it before it starts as a reader."""
    writer = state.writer
    with connect(state, writer.name, dbname="postgres") as conn:
        conn.execute("CHECKPOINT")  # pg_rewind reads the source's control file
    source = f"host={state.peer_host(writer.name)} port={writer.port} user=postgres dbname=postgres"
    process.run(
        [
            pg("pg_rewind"),
            f"--target-pgdata={state.nodes[name].data_dir}",
            f"--source-server={source}",
            "--no-sync",
        ],
        user=state.service_user or None,
        env={"PGPASSWORD": state.admin_password},
        timeout=600,
    )


def add_customer(state: StackState, customer_id: int, name: str) -> bool:
    """Add a customer (the poison order's fix); False if it existed already (nothing changed)."""
    with connect(state, state.writer.name) as conn:
        return (
            conn.execute(
                "INSERT INTO customers (customer_id, name) VALUES (%s, %s) "
                "ON CONFLICT (customer_id) DO NOTHING",
                (customer_id, name),
            ).rowcount
            == 1
        )
