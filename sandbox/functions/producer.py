"""Producer function: API Gateway -> SQS. Validates an order and queues it; never touches the DB."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from sandbox.functions.http import response
from sandbox.functions.orders import MAX_MESSAGE_BYTES, InvalidOrder, accepted, parse_order

logger = Logger(service="producer")
# API Gateway waits 29 s at most: a send that cannot reach SQS fails in seconds, the client retries.
sqs = boto3.client(
    "sqs", config=Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard"})
)
QUEUE_URL = os.environ["QUEUE_URL"]


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = event.get("body") or ""
    if len(body.encode()) > MAX_MESSAGE_BYTES:
        return response(413, {"message": f"body over {MAX_MESSAGE_BYTES} bytes (the SQS limit)"})
    try:
        order = parse_order(body)
    except InvalidOrder as error:
        return response(400, {"message": str(error), "field": error.field})

    # Any valid order fits one message (orders.NOTE_MAX_CHARS), so the send cannot be refused.
    message = accepted(order, event["requestContext"]["requestTimeEpoch"]).model_dump_json()
    # A retry of the same order is deduplicated by FIFO SQS (same content, same dedup id) and
    # ignored by the consumer's insert if it arrives anyway; a different order under a used id
    # is a new message, which the consumer parks in the DLQ as a conflict instead of dropping it.
    fifo = {"MessageGroupId": order.order_id, "MessageDeduplicationId": order.fingerprint()}
    sent = sqs.send_message(
        QueueUrl=QUEUE_URL, MessageBody=message, **(fifo if QUEUE_URL.endswith(".fifo") else {})
    )
    logger.info("order queued", order_id=order.order_id, message_id=sent["MessageId"])
    return response(202, {"order_id": order.order_id, "message_id": sent["MessageId"]})
