"""Direct-write function: API Gateway -> Aurora through RDS Proxy, synchronously (no queue).

The baseline from the guidance's first version, kept to compare against: the client gets 201 once
the row is committed (200 for a retry of a committed order, 409 if the id holds a different
one), or a 503 while the database fails over, and must retry itself.
"""

from __future__ import annotations

from typing import Any

import psycopg
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from sandbox.functions.database import OrderConflict, insert_order
from sandbox.functions.http import response
from sandbox.functions.orders import MAX_MESSAGE_BYTES, InvalidOrder, accepted, parse_order

logger = Logger(service="direct")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = event.get("body") or ""
    if len(body.encode()) > MAX_MESSAGE_BYTES:  # the same limit as the queued path's
        return response(413, {"message": f"body over {MAX_MESSAGE_BYTES} bytes"})
    try:
        order = parse_order(body)
    except InvalidOrder as error:
        return response(400, {"message": str(error), "field": error.field})
    try:
        inserted = insert_order(accepted(order, event["requestContext"]["requestTimeEpoch"]))
    except OrderConflict as error:
        return response(409, {"message": str(error), "field": "order_id"})
    except psycopg.IntegrityError:
        return response(422, {"message": "unknown customer", "field": "customer_id"})
    except psycopg.Error as error:
        logger.warning("write failed", order_id=order.order_id, error=str(error).strip())
        return response(503, {"message": "database unavailable: retry"})
    if not inserted:  # a retry of an order that is already committed: the same answer, as 200
        return response(200, {"order_id": order.order_id, "message": "already committed"})
    return response(201, {"order_id": order.order_id})
