"""The functions' side of the database: one connection per function instance, through the proxy,
with credentials from Secrets Manager, the idempotent insert both write paths use, and the
consumer's way to commit a whole batch of them in one transaction."""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg
from aws_lambda_powertools.utilities import parameters
from psycopg.types.json import Jsonb

from sandbox.functions.orders import QueuedOrder

INSERT = """
    INSERT INTO orders (order_id, customer_id, payload, accepted_at)
    VALUES (%(order_id)s, %(customer_id)s, %(payload)s, %(accepted_at)s)
    ON CONFLICT (order_id) DO NOTHING
"""
#: A whole batch in one statement: the same insert, its columns as arrays, one row per order.
INSERT_ALL = """
    INSERT INTO orders (order_id, customer_id, payload, accepted_at)
    SELECT * FROM unnest(%(order_id)s::text[], %(customer_id)s::bigint[],
                         %(payload)s::jsonb[], %(accepted_at)s::timestamptz[])
    ON CONFLICT (order_id) DO NOTHING
"""
INSERT_COLUMNS = ("order_id", "customer_id", "payload", "accepted_at")
STORED = "SELECT payload FROM orders WHERE order_id = %s"  # the order this id already holds
# One Lambda instance serves one request at a time; the local gateway serves several on threads,
# so "per instance" is "per thread" here, and the same thing in AWS.
_instance = threading.local()


#: How a password is refused (SQLSTATE 28P01): PostgreSQL's words (RDS Proxy's taken to be the
#: same: unverified without an account) and PgBouncer's. psycopg gets no SQLSTATE for a failed
#: connection (psycopg issue 1188), so the words say it.
REFUSED_PASSWORD = ("password authentication failed", "SASL authentication failed")


def connection() -> psycopg.Connection:
    """This instance's connection, reopened after the proxy or a failover dropped it."""
    conn = getattr(_instance, "conn", None)
    if conn is None or conn.closed or conn.broken:
        conn = _instance.conn = reconnect()
    return conn


def reconnect() -> psycopg.Connection:
    """A new connection, with the credentials cached for 5 minutes (a burst of invocations costs
    one Secrets Manager call); if the password is refused, the secret was rotated since: fetch
    it again and try once more."""
    try:
        return connect(secret(max_age=300), connect_timeout=5)
    except psycopg.OperationalError as error:
        if not any(words in str(error) for words in REFUSED_PASSWORD):
            raise
        return connect(secret(max_age=0), connect_timeout=5)


def secret(*, max_age: int) -> dict[str, Any]:
    """The DB credentials from Secrets Manager; ``max_age`` 0 fetches them anew."""
    return parameters.get_secret(
        os.environ["DB_SECRET_ID"], transform="json", max_age=max_age, force_fetch=max_age == 0
    )


def connect(credentials: dict[str, Any], *, connect_timeout: int) -> psycopg.Connection:
    """A new connection through the proxy."""
    return psycopg.connect(
        host=os.environ["DB_PROXY_HOST"],
        port=int(os.environ.get("DB_PROXY_PORT", "5432")),
        dbname=credentials["dbname"],
        user=credentials["username"],
        password=credentials["password"],
        sslmode=os.environ.get("DB_SSLMODE", "require"),
        connect_timeout=connect_timeout,
        autocommit=True,
        prepare_threshold=None,  # transaction pooling can't keep prepared statements
    )


def row(order: QueuedOrder) -> dict[str, Any]:
    """The insert's parameters: the order's fields, and the whole order as the payload."""
    return order.model_dump() | {"payload": Jsonb(order.model_dump(mode="json"))}


def batch_params(orders: list[QueuedOrder]) -> dict[str, list[Any]]:
    """`INSERT_ALL`'s parameters: each column's values, an order's in the same place in each,
    the orders by id (two batches holding the same ids lock them in one order: no deadlock)."""
    rows = [row(order) for order in sorted(orders, key=lambda order: order.order_id)]
    return {name: [r[name] for r in rows] for name in INSERT_COLUMNS}


class OrderConflict(ValueError):
    """The order id is already committed with a different order: the first one stands."""


def insert_order(order: QueuedOrder) -> bool:
    """Commit ``order`` once, ever: False if this same order is already there (a redelivery or a
    retry); `OrderConflict` if its id holds a different order, which must not vanish silently."""
    conn = connection()
    if conn.execute(INSERT, row(order)).rowcount == 1:
        return True
    (stored,) = conn.execute(STORED, (order.order_id,)).fetchone() or (None,)
    if stored is None or not order.same_as(stored):
        raise OrderConflict(f"order {order.order_id} already holds a different order")
    return False


class NotAllNew(Exception):
    """Some order of a batch already has a row (a redelivery, or a different order under its
    id): the batch is undone, for each order to be taken alone."""


def insert_new_orders(orders: list[QueuedOrder]) -> None:
    """Commit every order of ``orders``, each new, in one transaction (one wait for the replica
    instead of one an order), or none of them: raises `NotAllNew` or the database's error (if
    only the commit's answer was lost, the orders are committed: each is found there later)."""
    conn = connection()
    with conn.transaction():
        inserted = conn.execute(INSERT_ALL, batch_params(orders)).rowcount
        if inserted != len(orders):
            raise NotAllNew(f"{len(orders) - inserted} of {len(orders)} orders already had a row")
