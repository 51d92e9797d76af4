"""The consumer function on the live stack's proxy and database, called as Lambda calls it: a
batch of new orders commits in one transaction; a batch with anything else in it (an order
already committed, a poison order, a different order under a used id) is taken order by order,
and only what fails is reported back to SQS. Counted on the writer, row by row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox.functions import consumer
from sandbox.functions.orders import QueuedOrder
from sandbox.ops.load import poison_customer
from sandbox.standins.aurora import database
from tests.conftest import committed

CONTEXT = SimpleNamespace(
    function_name="consumer",
    memory_limit_in_mb=128,
    invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:consumer",
    aws_request_id="test",
)


@pytest.fixture
def invoke(live, monkeypatch):
    """Call the handler in this process with the functions' environment (the proxy, the secret)."""
    for name, value in live.function_env().items():
        monkeypatch.setenv(name, value)

    def call(*orders: QueuedOrder) -> list[str]:
        """The batch's order ids the function reported as failed."""
        event = {"Records": [record(order) for order in orders]}
        response = consumer.handler(event, CONTEXT)
        ids = {r["messageId"]: r["body"] for r in event["Records"]}
        return [ids[f["itemIdentifier"]] for f in response["batchItemFailures"]]

    return call


def record(order: QueuedOrder) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": order.model_dump_json(),
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": order.order_id},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders.fifo",
        "awsRegion": "us-east-1",
    }


def order(prefix: str, n: int, customer: int = 7, amount: str = "9.50") -> QueuedOrder:
    return QueuedOrder(
        order_id=f"{prefix}{n}",
        customer_id=customer,
        amount=amount,
        accepted_at=datetime.now(UTC),
    )


def transactions(live, prefix: str) -> int:
    """How many transactions committed the rows of ``prefix`` (each row's ``xmin``)."""
    with database.connect(live, live.writer.name) as conn:
        query = "SELECT count(DISTINCT xmin::text) FROM orders WHERE order_id LIKE %s"
        return conn.execute(query, (f"{prefix}%",)).fetchone()[0]


def test_a_batch_of_new_orders_commits_once_in_one_transaction(live, invoke):
    prefix = f"batch-{uuid.uuid4().hex[:6]}-"
    assert invoke(*(order(prefix, n) for n in range(10))) == []
    assert committed(live, prefix) == {f"{prefix}{n}": 1 for n in range(10)}
    assert transactions(live, prefix) == 1


def test_a_batch_with_a_redelivery_a_poison_and_a_conflict_is_taken_order_by_order(live, invoke):
    prefix = f"mixed-{uuid.uuid4().hex[:6]}-"
    again, clash = order(prefix, 0), order(prefix, 1)
    assert invoke(again, clash) == []  # committed before: what comes next meets them
    poison = order(prefix, 2, customer=poison_customer())
    different = order(prefix, 1, amount="10.00")  # another order under a used id
    new = [order(prefix, n) for n in (3, 4)]

    failed = invoke(new[0], again, poison, different, new[1])

    assert sorted(failed) == sorted([poison.model_dump_json(), different.model_dump_json()])
    assert committed(live, prefix) == {f"{prefix}{n}": 1 for n in (0, 1, 3, 4)}
    assert transactions(live, prefix) == 1 + 2  # the first batch, then each new order alone
    with database.connect(live, live.writer.name) as conn:
        query = "SELECT payload->>'amount' FROM orders WHERE order_id = %s"
        assert conn.execute(query, (clash.order_id,)).fetchone()[0] == "9.50"  # the first stands
