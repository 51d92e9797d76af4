"""The consumer function on the live stack's proxy and database, called as Lambda calls it: a
batch of new orders commits in one transaction; a batch with anything else in it (an order
already committed, a poison order, a different order under a used id) is undone and taken order
by order, and only what fails is reported back to SQS; a redelivered batch goes order by order at
once. Counted on the writer, row by row and transaction by transaction, and read in its log."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox.functions import consumer, database
from sandbox.functions.orders import QueuedOrder
from sandbox.ops.load import poison_customer
from sandbox.standins.aurora import database as aurora
from tests.conftest import committed

CONTEXT = SimpleNamespace(
    function_name="consumer",
    memory_limit_in_mb=128,
    invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:consumer",
    aws_request_id="test",
)


@dataclass
class Invoked:
    failed: list[str]  # the order ids the function reported back as failed
    logged: list[tuple[str, str]]  # (message, order id) of its log lines, in order


@pytest.fixture
def invoke(live, monkeypatch) -> Iterator[Callable[..., Invoked]]:
    """Call the handler in this process as a new instance would, with the functions'
    environment (the proxy, the secret), reading its log lines."""
    for name, value in live.function_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(database, "_instance", threading.local())  # a connection of its own
    handler = consumer.logger.registered_handler

    def call(*orders: QueuedOrder, receives: int = 1) -> Invoked:
        event = {"Records": [record(order, receives) for order in orders]}
        lines = io.StringIO()
        previous = handler.setStream(lines)
        try:
            response = consumer.handler(event, CONTEXT)
        finally:
            handler.setStream(previous)
        ids = {r["messageId"]: json.loads(r["body"])["order_id"] for r in event["Records"]}
        logged = [json.loads(line) for line in lines.getvalue().splitlines()]
        return Invoked(
            [ids[f["itemIdentifier"]] for f in response["batchItemFailures"]],
            [(entry["message"], entry.get("order_id", "")) for entry in logged],
        )

    yield call
    conn = getattr(database._instance, "conn", None)
    if conn is not None:
        conn.close()


def record(order: QueuedOrder, receives: int) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": order.model_dump_json(),
        "attributes": {"ApproximateReceiveCount": str(receives), "MessageGroupId": order.order_id},
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
    with aurora.connect(live, live.writer.name) as conn:
        query = "SELECT count(DISTINCT xmin::text) FROM orders WHERE order_id LIKE %s"
        return conn.execute(query, (f"{prefix}%",)).fetchone()[0]


def stored_amount(live, order_id: str) -> str:
    with aurora.connect(live, live.writer.name) as conn:
        query = "SELECT payload->>'amount' FROM orders WHERE order_id = %s"
        return conn.execute(query, (order_id,)).fetchone()[0]


def test_a_new_batch_commits_once_in_one_transaction(live, invoke):
    prefix = f"batch-{uuid.uuid4().hex[:6]}-"
    done = invoke(*(order(prefix, n) for n in range(10)))
    assert done.failed == []
    assert committed(live, prefix) == {f"{prefix}{n}": 1 for n in range(10)}
    assert transactions(live, prefix) == 1
    assert done.logged == [("order committed", f"{prefix}{n}") for n in range(10)]


def test_a_batch_with_a_retry_and_a_conflict_is_undone_and_taken_order_by_order(live, invoke):
    prefix = f"mixed-{uuid.uuid4().hex[:6]}-"
    again, clash = order(prefix, 0), order(prefix, 1)
    assert invoke(again, clash).failed == []  # committed before: what comes next meets them
    new, different = order(prefix, 2), order(prefix, 1, amount="10.00")  # another order, same id

    done = invoke(new, again, different)

    assert done.failed == [different.order_id]
    assert committed(live, prefix) == {f"{prefix}{n}": 1 for n in range(3)}
    assert transactions(live, prefix) == 1 + 1  # the first batch, then the new order alone
    assert stored_amount(live, clash.order_id) == "9.50"  # the first order under the id stands
    assert done.logged == [
        ("batch taken order by order", ""),
        ("order committed", new.order_id),
        ("duplicate ignored", again.order_id),
        ("order failed", different.order_id),
    ]


def test_a_poison_order_fails_alone(live, invoke):
    prefix = f"poison-{uuid.uuid4().hex[:6]}-"
    poison = order(prefix, 1, customer=poison_customer())
    done = invoke(order(prefix, 0), poison, order(prefix, 2))
    assert done.failed == [poison.order_id]
    assert committed(live, prefix) == {f"{prefix}0": 1, f"{prefix}2": 1}
    assert ("order failed", poison.order_id) in done.logged


def test_a_redelivered_batch_is_taken_order_by_order_at_once(live, invoke):
    prefix = f"again-{uuid.uuid4().hex[:6]}-"
    done = invoke(*(order(prefix, n) for n in range(3)), receives=2)
    assert done.failed == []
    assert transactions(live, prefix) == 3  # no try of the whole batch first
    assert done.logged == [("order committed", f"{prefix}{n}") for n in range(3)]
