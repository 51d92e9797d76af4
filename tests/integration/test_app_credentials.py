"""The functions' database login, on a real stack: the application role holds the least the
functions need, and its password rotated under traffic (`sandbox fault secret-rotated`) loses no
order and needs no restart: the consumer, refused with the password it cached, reads the secret
again and goes on."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from sandbox import stack
from sandbox.drills import drill
from sandbox.platform.state import StackState
from sandbox.standins import localstack
from sandbox.standins.aurora import database, events
from sandbox.standins.secrets_manager import SECRET_NAME
from tests.integration.test_drills import assert_nothing_lost

INSERT = (
    "INSERT INTO orders (order_id, customer_id, payload, accepted_at) "
    "VALUES (%s, %s, '{}', now()) ON CONFLICT (order_id) DO NOTHING"
)
#: What the role must not do: read customers, change or remove orders, create anything.
FORBIDDEN = [
    "SELECT count(*) FROM customers",
    "UPDATE orders SET payload = '{}' WHERE order_id = 'least-1'",
    "DELETE FROM orders WHERE order_id = 'least-1'",
    "CREATE TABLE mine (x int)",
    "CREATE TEMP TABLE mine (x int)",
    "TRUNCATE orders",
]


def as_app(state: StackState, password: str | None = None, **where) -> psycopg.Connection:
    """A connection as the functions make it: the application role, through the proxy unless
    ``where`` names a node's host and port."""
    return psycopg.connect(
        host=where.get("host", state.host("proxy")),
        port=where.get("port", state.ports["proxy"]),
        dbname=state.db_name,
        user=state.db_user,
        password=state.db_password if password is None else password,
        autocommit=True,
        prepare_threshold=None,
        connect_timeout=5,
    )


def test_the_application_role_may_insert_and_read_orders_and_nothing_else(live):
    try:
        with as_app(live) as conn:
            me = "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
            assert conn.execute(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                "FROM pg_roles WHERE rolname = current_user"
            ).fetchone() == (False, False, False, False, False)
            owned = conn.execute(
                f"SELECT (SELECT count(*) FROM pg_class WHERE relowner = {me}) "
                f"+ (SELECT count(*) FROM pg_namespace WHERE nspowner = {me}) "
                f"+ (SELECT count(*) FROM pg_database WHERE datdba = {me})"
            ).fetchone()
            assert owned == (0,)
            assert conn.execute(INSERT, ("least-1", 1)).rowcount == 1
            assert conn.execute("SELECT payload FROM orders WHERE order_id = 'least-1'").fetchone()
            for statement in FORBIDDEN:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
            # The foreign key is still checked (as the table's owner), and says so as the DLQ
            # listing reads it: an unknown customer stays the poison order it was.
            with pytest.raises(psycopg.errors.ForeignKeyViolation, match='table "customers"'):
                conn.execute(INSERT, ("least-2", 10**12))
    finally:
        with database.connect(live, live.writer.name) as admin:
            admin.execute("DELETE FROM orders WHERE order_id LIKE 'least-%'")


def test_a_rotated_password_under_traffic_loses_nothing_and_needs_no_restart(live):
    # New runner workers: each caches the secret at its first login, so the rotation in the
    # middle of the drill finds cached passwords, however long this stack has run before.
    stack.restart(live, "consumer")
    consumer = live.pids["consumer"]
    old_password = live.db_password
    proxy_log = Path(live.data_root, "pgbouncer.log")
    seen = proxy_log.stat().st_size

    report = drill.run(live, "secret-rotated", "queue", count=1000, rate=100)

    assert_nothing_lost(report)  # every acknowledged order committed once, none in the DLQ
    with proxy_log.open() as log:
        log.seek(seen)
        refused = [line for line in log if "SASL authentication failed" in line]
    assert refused, "no function was refused its cached password after the rotation"
    after = events.read(live, since=report.fault_at or 0)
    assert [e["event"] for e in after].count("secret-rotated") == 1
    assert not [e for e in after if e["event"] == "service-restarted"]
    live.refresh()
    assert live.pids["consumer"] == consumer, "the consumer was restarted"

    # The new password is the secret's, and the proxy and both nodes (the reader by
    # replication) take it and refuse the one before.
    assert live.db_password != old_password
    secret = localstack.client(live, "secretsmanager").get_secret_value(SecretId=SECRET_NAME)
    assert json.loads(secret["SecretString"])["password"] == live.db_password
    nodes = [{"host": live.host(node.name), "port": node.port} for node in live.nodes.values()]
    for where in [{}, *nodes]:
        with as_app(live, **where) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (live.db_user,)
        with pytest.raises(psycopg.OperationalError, match="authentication failed"):
            as_app(live, password=old_password, **where)
