"""The functions' connection after a secret rotation: a refused password makes them read the secret
again and try once more; any other failure is not theirs to retry (the queue redelivers)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from sandbox.functions import database

OLD = {"dbname": "orders", "username": "app", "password": "old"}
NEW = {"dbname": "orders", "username": "app", "password": "new"}
POSTGRES = 'connection failed: FATAL:  password authentication failed for user "app"'
PGBOUNCER = "connection failed: FATAL:  SASL authentication failed"


class Secrets:
    """Secrets Manager as Powertools' cache sees it: the cached value until a forced fetch."""

    def __init__(self, cached: dict[str, str], current: dict[str, str]) -> None:
        self.cached, self.current = cached, current
        self.fetches: list[int] = []

    def __call__(self, *, max_age: int) -> dict[str, Any]:
        self.fetches.append(max_age)
        if max_age == 0:
            self.cached = self.current
        return self.cached


class Connection:
    closed = broken = False

    def __init__(self, user: str) -> None:
        self.user = user


class Database:
    """A server that accepts only ``password``, or fails every login with ``error``."""

    def __init__(self, password: str, error: str = POSTGRES) -> None:
        self.password, self.error = password, error
        self.tried: list[str] = []

    def __call__(self, credentials: dict[str, Any], *, connect_timeout: int) -> Connection:
        self.tried.append(credentials["password"])
        if credentials["password"] != self.password:
            raise psycopg.OperationalError(self.error)
        return Connection(credentials["username"])


@pytest.fixture
def no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "_instance", type(database._instance)())


def fake(monkeypatch: pytest.MonkeyPatch, secrets: Secrets, server: Database) -> None:
    monkeypatch.setattr(database, "secret", secrets)
    monkeypatch.setattr(database, "connect", server)


@pytest.mark.parametrize("refusal", [POSTGRES, PGBOUNCER])
def test_a_refused_password_reads_the_secret_again_and_connects_once_more(
    monkeypatch, no_connection, refusal
):
    secrets, server = Secrets(cached=OLD, current=NEW), Database("new", refusal)
    fake(monkeypatch, secrets, server)
    assert database.connection().user == "app"
    assert secrets.fetches == [300, 0]  # the cached secret, then a forced fetch
    assert server.tried == ["old", "new"]


def test_the_cached_secret_is_enough_when_it_still_works(monkeypatch, no_connection):
    secrets, server = Secrets(cached=NEW, current=NEW), Database("new")
    fake(monkeypatch, secrets, server)
    first = database.connection()
    assert database.connection() is first  # kept: no second login
    assert secrets.fetches == [300] and server.tried == ["new"]


def test_a_password_still_refused_after_the_fresh_fetch_fails_the_record(
    monkeypatch, no_connection
):
    """Retried once, not in a loop: the record fails and the queue brings it back."""
    secrets, server = Secrets(cached=OLD, current=OLD), Database("rotating")
    fake(monkeypatch, secrets, server)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        database.connection()
    assert secrets.fetches == [300, 0] and server.tried == ["old", "old"]


def test_an_unreachable_database_is_not_a_rotation(monkeypatch, no_connection):
    secrets = Secrets(cached=OLD, current=NEW)
    server = Database("new", "connection failed: server closed the connection unexpectedly")
    fake(monkeypatch, secrets, server)
    with pytest.raises(psycopg.OperationalError, match="closed the connection"):
        database.connection()
    assert secrets.fetches == [300] and server.tried == ["old"]  # no Secrets Manager call more
