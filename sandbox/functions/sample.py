"""The guidance's published sample, reproduced to measure what it costs (`sandbox up --consumer
guidance-sample`); never the sandbox's own choice.

Its consumer (``cfn/nested-templates/core-app.yml`` and its handler) differs from
`sandbox.functions.consumer` in four ways, each kept here on purpose:
- the DB secret is fetched from Secrets Manager and a new connection opened on every invocation
  (the sandbox caches both per instance);
- a plain ``INSERT`` into a table with no unique key: a redelivered message is a second row (the
  sandbox's insert is idempotent on the order id);
- any failure raises, so the whole batch is retried (batch size 1, no
  ``ReportBatchItemFailures``: the profile's event source mapping);
- a function timeout equal to the visibility timeout, 5 s each (AWS advises at least 6x).

It logs a failed order as the sandbox's consumer does (the sample prints the error), so
`sandbox dlq list` says why a message was parked. The direct path's function is the sample's
too: the same plain insert, 200 or 500 (a body the API refuses is still a 400: the API's
contract is the same in every profile).
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.functions.database import connect, row, secret
from sandbox.functions.http import response
from sandbox.functions.orders import InvalidOrder, QueuedOrder, accepted, parse_order

INSERT = """
    INSERT INTO orders (order_id, customer_id, payload, accepted_at)
    VALUES (%(order_id)s, %(customer_id)s, %(payload)s, %(accepted_at)s)
"""


def insert(order: QueuedOrder) -> None:
    """A new connection with a secret fetched just now, one plain insert, close."""
    with connect(secret(max_age=0), connect_timeout=3) as conn:
        conn.execute(INSERT, row(order))


def consumer_handler(event: dict[str, Any], context: Any) -> None:
    for record in event["Records"]:  # one, with the profile's batch size
        try:
            insert(QueuedOrder.model_validate_json(record["body"], strict=False))
        except Exception as error:  # said as the sandbox's consumer says it, for `sandbox dlq`
            _failed(record, error)
            raise


def _failed(record: dict[str, Any], error: Exception) -> None:
    try:
        order_id = str(json.loads(record["body"]).get("order_id", "?"))
    except (ValueError, AttributeError):
        order_id = "?"
    line = {
        "level": "WARNING",
        "service": "consumer",
        "message": "order failed",
        "order_id": order_id,
        "error": str(error).strip(),
        "receive_count": int(record["attributes"].get("ApproximateReceiveCount", 0)),
    }
    print(json.dumps(line), flush=True)


def direct_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        order = parse_order(event.get("body"))
    except InvalidOrder as error:  # the API's contract holds in every profile
        return response(400, {"message": str(error), "field": error.field})
    try:
        insert(accepted(order, event["requestContext"]["requestTimeEpoch"]))
    except Exception as error:  # the sample answers every failure alike
        print(json.dumps({"level": "WARNING", "message": "write failed", "error": str(error)}))
        return response(500, {"message": "error"})
    return response(200, {"order_id": order.order_id})
