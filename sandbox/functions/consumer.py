"""Consumer function: SQS -> Aurora through RDS Proxy, one idempotent insert per message.

A record that fails (database down, proxy paused, unknown customer) is reported back as a batch item
failure: SQS makes it visible again after the visibility timeout, and after ``maxReceiveCount``
receives moves it to the DLQ. Nothing is lost while the database fails over.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from psycopg.types.json import Jsonb

from sandbox.functions.orders import QueuedOrder

logger = Logger(service="consumer")
processor = BatchProcessor(event_type=EventType.SQS)

INSERT = """
    INSERT INTO orders (order_id, customer_id, payload, accepted_at)
    VALUES (%(order_id)s, %(customer_id)s, %(payload)s, %(accepted_at)s)
    ON CONFLICT (order_id) DO NOTHING
"""
_connection: psycopg.Connection | None = None


def connection() -> psycopg.Connection:
    """One connection per function instance, reopened after the proxy drops it."""
    global _connection
    if _connection is None or _connection.closed or _connection.broken:
        # Cached for 5 minutes, so a burst of invocations costs one Secrets Manager call.
        secret = parameters.get_secret(os.environ["DB_SECRET_ID"], transform="json", max_age=300)
        _connection = psycopg.connect(
            host=os.environ["DB_PROXY_HOST"],
            port=int(os.environ.get("DB_PROXY_PORT", "5432")),
            dbname=secret["dbname"],
            user=secret["username"],
            password=secret["password"],
            sslmode=os.environ.get("DB_SSLMODE", "prefer"),
            connect_timeout=5,
            autocommit=True,
            prepare_threshold=None,  # transaction pooling can't keep prepared statements
        )
    return _connection


def record_handler(record: SQSRecord) -> None:
    order = QueuedOrder.model_validate_json(record.body, strict=False)
    params = order.model_dump() | {"payload": Jsonb(order.model_dump(mode="json"))}
    inserted = connection().execute(INSERT, params).rowcount
    logger.info("order committed" if inserted else "duplicate ignored", order_id=order.order_id)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
