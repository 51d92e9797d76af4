"""Admin function inside the VPC: invoked with IAM only (``aws lambda invoke``), never through a URL
or an API, because it reads every order and can change the schema.

- `handler` counts the committed orders whose id starts with a prefix, reading the writer through
  the cluster endpoint rather than the proxy (like the local drill), so a drill can reconcile what
  it sent with what committed, and see on which instance each order committed.
- `migrate` creates the schema the consumer writes to, from the same ``schema.sql`` the local stack
  applies. The stack runs it once per deploy of this code (a CDK trigger); it is idempotent.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="reconcile")

SCHEMA = Path(__file__).with_name("schema.sql")
COMMITTED = """
    SELECT order_id, committed_node FROM orders WHERE starts_with(order_id, %s) ORDER BY order_id
"""
# Locally `committed_node` defaults to the PostgreSQL instance's cluster_name; on Aurora the
# instance identifier says the same thing (which node was the writer when the order committed).
AURORA_NODE = (
    "ALTER TABLE orders ALTER COLUMN committed_node SET DEFAULT aurora_db_instance_identifier()"
)


def connect() -> psycopg.Connection:
    """Connect to the writer named in the cluster's secret (its host is the cluster endpoint)."""
    secret = parameters.get_secret(os.environ["DB_SECRET_ID"], transform="json")
    return psycopg.connect(
        host=secret["host"],
        port=int(secret["port"]),
        dbname=secret["dbname"],
        user=secret["username"],
        password=secret["password"],
        sslmode="require",
        connect_timeout=5,
        autocommit=True,
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """``{"prefix": "drill-7-"}`` -> the ids committed with that prefix, and per writer node."""
    prefix = event.get("prefix") if isinstance(event, dict) else None
    if not isinstance(prefix, str) or not prefix:
        raise ValueError('expected {"prefix": "<non-empty order id prefix>"}')
    with connect() as conn:
        rows = conn.execute(COMMITTED, (prefix,)).fetchall()
    by_node = Counter(node for _, node in rows)
    logger.info("reconciled", prefix=prefix, count=len(rows), by_node=dict(by_node))
    return {
        "prefix": prefix,
        "count": len(rows),
        "by_node": dict(by_node),
        "order_ids": [order_id for order_id, _ in rows],
    }


@logger.inject_lambda_context
def migrate(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Apply ``schema.sql`` if the orders table does not exist yet; safe to run again."""
    with connect() as conn, conn.transaction():
        created = conn.execute("SELECT to_regclass('public.orders') IS NULL").fetchone()[0]
        if created:
            conn.execute(SCHEMA.read_text())
        conn.execute(AURORA_NODE)
    logger.info("schema ready", created=created)
    return {"created": created}
