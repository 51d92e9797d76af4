"""The RDS Proxy stand-in: PgBouncer in transaction pooling in front of the writer.

Like RDS Proxy it keeps client connections while the database behind it changes: PAUSE holds new
transactions, RESUME releases them, and repointing ``[databases]`` plus RELOAD moves the pool to the
new writer. All control goes through PgBouncer's admin console.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg

from sandbox.platform import process
from sandbox.platform.lifecycle import Component
from sandbox.platform.state import StackState

ADMIN_USER = "pgbouncer"


def binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if not found:
        raise FileNotFoundError("PgBouncer not found: apt-get install pgbouncer")
    return found


def config_path(state: StackState) -> Path:
    return Path(state.data_root, "pgbouncer.ini")


def write_config(state: StackState) -> None:
    """Write pgbouncer.ini pointing at the current writer (atomically: RELOAD never sees half),
    and the auth file with the application role's password as the state file has it now (a
    process that read it before a rotation, `faults.secret_rotated`, would write the old one)."""
    state.refresh()
    root = Path(state.data_root)
    userlist = root / "userlist.txt"
    userlist.write_text(
        f'"{state.db_user}" "{state.db_password}"\n"{ADMIN_USER}" "{state.admin_password}"\n'
    )
    writer = state.writer
    config = f"""\
[databases]
{state.db_name} = host={state.peer_host(writer.name)} port={writer.port} dbname={state.db_name}

[pgbouncer]
listen_addr = {state.bind_host}
listen_port = {state.ports["proxy"]}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {userlist}
admin_users = {ADMIN_USER}
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
; a failed login must not block the pool for 15 s after a failover
server_login_retry = 0
; clients wait (as with RDS Proxy) rather than fail while the writer is paused or away
query_wait_timeout = 120
server_connect_timeout = 3
; the writer's address is a name on Compose and a recreated container gets a new one
dns_max_ttl = 1
; a writer cut off the network answers nothing, not even a reset. A server connection is dropped
; once data sent on it has gone unacknowledged for 4 s (a query sent after the cut; TCP alone
; retries for ~15 minutes), or once an idle one misses 3 keepalive probes 1 s apart (one waiting
; on a commit), so PAUSE, and the clients waiting on them, are not held until TCP gives up
tcp_user_timeout = 4000
tcp_keepalive = 1
tcp_keepidle = 1
tcp_keepintvl = 1
tcp_keepcnt = 3
ignore_startup_parameters = extra_float_digits,options
log_connections = 0
log_disconnections = 0
"""
    target = config_path(state)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(config)  # 0644: PgBouncer reads it as whoever writes it (here, or a container)
    tmp.replace(target)


@dataclass
class Proxy(Component):
    name: str = "proxy"
    title = "PgBouncer"
    start_timeout = 15.0

    def prepare(self, state: StackState) -> None:
        """Its config, pointed at the writer the state names now."""
        write_config(state)

    def command(self, state: StackState) -> process.Command:
        return process.Command(
            argv=[binary(), str(config_path(state))],
            log=Path(state.data_root, "pgbouncer.log"),
            user=state.service_user or None,
        )

    def stop_timeout(self, state: StackState) -> float:
        return 5.0  # SIGTERM: it exits at once (SIGINT, its "safe shutdown", waits for clients)

    def healthy(self, state: StackState) -> bool:
        with admin(state, connect_timeout=2) as conn:
            conn.execute("SHOW VERSION")
        return True


def admin(state: StackState, **kwargs) -> psycopg.Connection:
    """PgBouncer's admin console (the ``pgbouncer`` pseudo-database)."""
    return psycopg.connect(
        host=state.host("proxy"),
        port=state.ports["proxy"],
        dbname="pgbouncer",
        user=ADMIN_USER,
        password=state.admin_password,
        autocommit=True,
        **({"connect_timeout": 5} | kwargs),
    )


def command(state: StackState, sql: str) -> None:
    with admin(state) as conn:
        conn.execute(sql)
