"""The reconcile function: it refuses a request it cannot answer before it touches the database,
answers with each order's times, and the deploy-time migration retries a refused connection."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest

from aws import assets
from aws.functions import reconcile


@dataclass
class Context:
    function_name: str = "reconcile"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:reconcile"
    aws_request_id: str = "test"


@pytest.mark.parametrize("event", [{}, {"prefix": ""}, {"prefix": 7}, []])
def test_a_prefix_is_required(event, monkeypatch) -> None:
    def no_database() -> None:
        raise AssertionError("connected before validating the event")

    monkeypatch.setattr(reconcile, "connect", no_database)
    with pytest.raises(ValueError, match="prefix"):
        reconcile.handler(event, Context())


class Rows:
    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows

    def fetchall(self) -> list[tuple]:
        return self.rows

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None


class Connection:
    """psycopg's connection as the functions use it: a context manager, transactions, execute."""

    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows
        self.executed: list[str] = []

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def transaction(self) -> Connection:
        return self

    def execute(self, query: str, params: tuple = ()) -> Rows:
        self.executed.append(query)
        return Rows(self.rows)


def test_each_committed_order_comes_with_its_accepted_and_commit_times(monkeypatch) -> None:
    rows = [
        ("drill-a-queue-000000", "writer-a", 1_765_000_000.125, 1_765_000_000.5),
        ("drill-a-queue-000001", "reader-b", 1_765_000_001.0, 1_765_000_031.25),
    ]
    monkeypatch.setattr(reconcile, "connect", lambda: Connection(rows))
    assert reconcile.handler({"prefix": "drill-a"}, Context()) == {
        "prefix": "drill-a",
        "count": 2,
        "by_node": {"writer-a": 1, "reader-b": 1},
        "orders": [
            ["drill-a-queue-000000", 1_765_000_000.125, 1_765_000_000.5],
            ["drill-a-queue-000001", 1_765_000_001.0, 1_765_000_031.25],
        ],
    }


def test_the_times_come_from_the_columns_the_local_drill_reads() -> None:
    assert "EXTRACT(EPOCH FROM accepted_at)" in reconcile.COMMITTED
    assert "EXTRACT(EPOCH FROM committed_at)" in reconcile.COMMITTED


def test_a_90000_order_reply_fits_lambdas_6_mb_response() -> None:
    """aws/README's limit for a drill (count x paths under 90,000), with the longest order ids
    a drill makes (the direct path's) and times to the millisecond."""
    rows = [
        (f"drill-abcdef-direct-{i:06d}", "writer", 1_765_000_000.125, 1_765_000_000.5)
        for i in range(90_000)
    ]
    assert len(json.dumps(reconcile.reply("drill-abcdef", rows))) < 6_000_000


def refused(times: int, then: Connection) -> tuple[list[bool], Callable[..., Connection]]:
    """A `connect` that raises OperationalError ``times`` times, then returns ``then``; it records
    whether each call read the secret afresh."""
    calls: list[bool] = []

    def connect(*, fresh: bool = False) -> Connection:
        calls.append(fresh)
        if len(calls) <= times:
            raise psycopg.OperationalError("connection refused")
        return then

    return calls, connect


APP_SECRET = {"username": "app", "password": "it's new", "dbname": "orders"}


@pytest.fixture
def app_secret(monkeypatch) -> list[str]:
    """The application role's secret, as the migration reads it (never from a cache)."""
    monkeypatch.setenv("APP_SECRET_ID", "arn:app")
    read: list[str] = []

    def get_secret(name: str, *, transform: str, force_fetch: bool) -> dict[str, str]:
        assert transform == "json" and force_fetch
        read.append(name)
        return APP_SECRET

    monkeypatch.setattr(reconcile.parameters, "get_secret", get_secret)
    # Staged beside reconcile.py in the function's code; here, read where they live.
    monkeypatch.setattr(reconcile, "SCHEMA", assets.SCHEMA)
    monkeypatch.setattr(reconcile, "GRANTS", assets.GRANTS)
    return read


def test_the_migration_retries_a_refused_connection_with_backoff(monkeypatch, app_secret) -> None:
    conn = Connection([(False,)])  # the table is there already, and the role
    fresh, connect = refused(2, conn)
    monkeypatch.setattr(reconcile, "connect", connect)
    slept: list[float] = []
    retrying = reconcile.connect_with_retries
    monkeypatch.setattr(reconcile, "connect_with_retries", lambda: retrying(sleep=slept.append))
    assert reconcile.migrate({}, Context()) == {"created": False, "role_created": False}
    assert slept == [1.0, 2.0]
    assert fresh == [True, True, True]  # the secret read again each time
    assert reconcile.AURORA_NODE in conn.executed


def statements(conn: Connection) -> list[str]:
    return [q if isinstance(q, str) else q.as_string() for q in conn.executed]


def test_the_migration_creates_the_role_with_its_own_secrets_password(
    monkeypatch, app_secret
) -> None:
    """The master's secret logs in (``connect``); the role's password comes from its own."""

    class NoRoleYet(Connection):
        def execute(self, query: str, params: tuple = ()) -> Rows:
            self.executed.append(query)
            return Rows([] if query == reconcile.ROLE_EXISTS else [(True,)])

    conn = NoRoleYet([])
    monkeypatch.setattr(reconcile, "connect_with_retries", lambda: conn)
    assert reconcile.migrate({}, Context()) == {"created": True, "role_created": True}
    assert app_secret == ["arn:app"]
    done = statements(conn)
    assert """CREATE ROLE "app" LOGIN PASSWORD 'it''s new'""" in done
    assert done[-1] == reconcile.GRANTS.read_text().format(app='"app"', db='"orders"')


def test_an_existing_role_keeps_its_password_and_gets_the_grants(monkeypatch, app_secret) -> None:
    """Its password is the rotation's: a migration must not put back the one it read."""
    conn = Connection([(False,)])
    monkeypatch.setattr(reconcile, "connect_with_retries", lambda: conn)
    assert reconcile.migrate({}, Context())["role_created"] is False
    done = statements(conn)
    assert not any(q.startswith("CREATE ROLE") for q in done)
    assert 'GRANT SELECT, INSERT ON orders TO "app";' in done[-1]


def test_every_attempt_fits_in_the_migrate_functions_timeout(synth) -> None:
    migrate = synth.resources[synth.logical_id(synth.stack.functions.migrate)]["Properties"]
    assert reconcile.worst_connect_seconds() < migrate["Timeout"]
