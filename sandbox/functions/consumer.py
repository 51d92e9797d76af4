"""Consumer function: SQS -> Aurora through RDS Proxy, each order committed once, idempotently.

A batch delivered for the first time is committed whole, in one transaction: one wait for the
synchronous replica for all its orders. If it cannot be (the database down or failing over, an
unknown customer, an order already committed, an id holding a different order, a body that is
not an order), the transaction is undone and each order is taken alone, as every order of a
redelivered batch is at once: one that fails is reported back as a batch item failure, SQS makes
it visible again after the visibility timeout, and after ``maxReceiveCount`` receives moves it to
the DLQ. Nothing is lost while the database fails over.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import psycopg
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from sandbox.functions.database import NotAllNew, insert_new_orders, insert_order
from sandbox.functions.orders import QueuedOrder

logger = Logger(service="consumer")
processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event["Records"]
    if all(r["attributes"].get("ApproximateReceiveCount") == "1" for r in records):
        try:
            commit_all(records)  # the whole batch in one transaction, or none of it
            return {"batchItemFailures": []}
        except (NotAllNew, psycopg.Error, ValidationError) as error:
            logger.info("batch taken order by order", error=str(error).strip())
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


def commit_all(records: list[dict[str, Any]]) -> None:
    orders = [QueuedOrder.model_validate_json(record["body"], strict=False) for record in records]
    insert_new_orders(orders)
    for order in orders:
        logger.info("order committed", order_id=order.order_id)


def record_handler(record: SQSRecord) -> None:
    try:
        order = QueuedOrder.model_validate_json(record.body, strict=False)
        inserted = insert_order(order)
    except Exception as error:
        logger.warning(
            "order failed",
            order_id=_order_id(record.body),
            error=str(error).strip(),
            receive_count=int(record.attributes.approximate_receive_count),
        )
        raise
    logger.info("order committed" if inserted else "duplicate ignored", order_id=order.order_id)


def _order_id(body: str) -> str:
    """The order id, even from a message that is not a valid order (so the DLQ can say why)."""
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(body).get("order_id", "?"))
    return "?"
