"""Admin function inside the VPC: invoked with IAM only (``aws lambda invoke``), never through a URL
or an API, because it reads every order and can change the schema.

- `handler` lists the committed orders whose id starts with a prefix, each with when the API
  accepted it and when it committed, reading the writer through the cluster endpoint rather than
  the proxy (like the local drill): a drill reconciles what it sent with what committed, and
  measures latency and RTO from the same columns as locally (``accepted_at``, ``committed_at``);
  ``by_node`` says on which instance they committed.
- `migrate` creates the schema the consumer writes to, from the same ``schema.sql`` the local stack
  applies, and the application role the functions log in as, with the privileges of
  ``grants.sql`` (the local stack's too) and the password of the role's own secret
  (``APP_SECRET_ID``); it alone logs in as the master user (``DB_SECRET_ID``). The stack runs it
  once per deploy of this code (a CDK trigger); it is idempotent. It
  retries its connection a few times, with backoff, before it gives up: a refused first
  connection (an instance still starting, a secret attachment just made) must not roll back a
  30-minute deploy.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from psycopg import sql

logger = Logger(service="reconcile")

SCHEMA = Path(__file__).with_name("schema.sql")
GRANTS = Path(__file__).with_name("grants.sql")
ROLE_EXISTS = "SELECT 1 FROM pg_roles WHERE rolname = %s"
COMMITTED = """
    SELECT order_id, committed_node,
           round(EXTRACT(EPOCH FROM accepted_at)::numeric, 3)::float8,
           round(EXTRACT(EPOCH FROM committed_at)::numeric, 3)::float8
    FROM orders WHERE starts_with(order_id, %s) ORDER BY order_id
"""
# Locally `committed_node` defaults to the PostgreSQL instance's cluster_name; on Aurora the
# instance identifier says the same thing (which node was the writer when the order committed).
AURORA_NODE = (
    "ALTER TABLE orders ALTER COLUMN committed_node SET DEFAULT aurora_db_instance_identifier()"
)


CONNECT_TIMEOUT_SECONDS = 5
#: The migration's waits between connection attempts: five attempts over at most
#: 5 x 5 s + 15 s = 40 s, inside the migrate function's 60 s (tests/aws/test_reconcile.py).
RETRY_DELAYS_SECONDS = (1.0, 2.0, 4.0, 8.0)


def connect(*, fresh: bool = False) -> psycopg.Connection:
    """Connect to the writer named in the cluster's secret (its host is the cluster endpoint);
    ``fresh`` reads the secret again rather than from Powertools' cache."""
    secret = parameters.get_secret(os.environ["DB_SECRET_ID"], transform="json", force_fetch=fresh)
    return psycopg.connect(
        host=secret["host"],
        port=int(secret["port"]),
        dbname=secret["dbname"],
        user=secret["username"],
        password=secret["password"],
        sslmode="require",
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        autocommit=True,
    )


def connect_with_retries(sleep: Callable[[float], None] = time.sleep) -> psycopg.Connection:
    """`connect`, again after each `RETRY_DELAYS_SECONDS` while the database refuses or times
    out (psycopg's OperationalError); anything else, or the last refusal, is raised."""
    for delay in RETRY_DELAYS_SECONDS:
        try:
            return connect(fresh=True)
        except psycopg.OperationalError as error:
            logger.warning("database not reachable yet", error=str(error), retry_in_s=delay)
            sleep(delay)
    return connect(fresh=True)


def worst_connect_seconds() -> float:
    """How long `connect_with_retries` can take before it gives up: every attempt timing out."""
    attempts = len(RETRY_DELAYS_SECONDS) + 1
    return attempts * CONNECT_TIMEOUT_SECONDS + sum(RETRY_DELAYS_SECONDS)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """``{"prefix": "drill-7-"}`` -> the orders committed with that prefix, and per writer node.

    ``orders`` is ``[order_id, accepted_at, committed_at]`` per order (epoch seconds to the
    millisecond, the database's clock): lists, not objects, to keep a large drill's reply within
    Lambda's 6 MB."""
    prefix = event.get("prefix") if isinstance(event, dict) else None
    if not isinstance(prefix, str) or not prefix:
        raise ValueError('expected {"prefix": "<non-empty order id prefix>"}')
    with connect() as conn:
        rows = conn.execute(COMMITTED, (prefix,)).fetchall()
    return reply(prefix, rows)


def reply(prefix: str, rows: list[tuple[str, str, float, float]]) -> dict[str, Any]:
    """The handler's answer from its query's rows (order id, node, accepted, committed)."""
    by_node = Counter(node for _, node, _, _ in rows)
    logger.info("reconciled", prefix=prefix, count=len(rows), by_node=dict(by_node))
    return {
        "prefix": prefix,
        "count": len(rows),
        "by_node": dict(by_node),
        "orders": [[order_id, accepted, committed] for order_id, _, accepted, committed in rows],
    }


@logger.inject_lambda_context
def migrate(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Apply ``schema.sql`` if the orders table does not exist yet, create the application role
    if it does not exist, and grant it ``grants.sql``; safe to run again."""
    app = parameters.get_secret(os.environ["APP_SECRET_ID"], transform="json", force_fetch=True)
    with connect_with_retries() as conn, conn.transaction():
        created = conn.execute("SELECT to_regclass('public.orders') IS NULL").fetchone()[0]
        if created:
            conn.execute(SCHEMA.read_text())
        conn.execute(AURORA_NODE)
        role_created = create_role(conn, app["username"], app["password"])
        grants = sql.SQL(GRANTS.read_text())
        conn.execute(
            grants.format(app=sql.Identifier(app["username"]), db=sql.Identifier(app["dbname"]))
        )
    # Not ``created=``: that is a LogRecord attribute, and logging refuses to overwrite it
    # (KeyError: the migration would fail after its commit, and the deploy roll back).
    logger.info("schema ready", schema_created=created, role_created=role_created)
    return {"created": created, "role_created": role_created}


def create_role(conn: psycopg.Connection, user: str, password: str) -> bool:
    """Create the login role with the secret's password, unless it exists: then its password is
    the rotation's to change, and a migration must not put back an older one. (The statement
    carries the password: the cluster's parameter group keeps ``log_statement`` at none.)"""
    if conn.execute(ROLE_EXISTS, (user,)).fetchone():
        return False
    create = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
    conn.execute(create.format(sql.Identifier(user), sql.Literal(password)))
    return True
