"""The consumer function on the live stack's proxy and database, called as Lambda calls it: a
batch of new orders commits in one transaction; a batch with anything else in it (an order
already committed, a poison order, a different order under a used id) is undone and taken order
by order, and only what fails is reported back to SQS; a redelivered batch goes order by order at
once. Counted on the writer, row by row and transaction by transaction, and read in its log."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.functions import consumer, database
from sandbox.functions.orders import QueuedOrder
from sandbox.ops.load import poison_customer
from sandbox.standins.aurora import database as aurora
from sandbox.standins.aws_lambda.event import sqs_event
from sandbox.standins.aws_lambda.invoke import invoke as invoke_function
from tests.conftest import committed

#: How long an invocation may run here: generous, so a slow machine never times a batch out.
TIMEOUT_SECONDS = 60.0


@dataclass
class Invoked:
    failed: list[str]  # the order ids the function reported back as failed
    logged: list[tuple[str, str]]  # (message, order id) of its log lines, in order


@pytest.fixture
def invoke(live, monkeypatch) -> Iterator[Callable[..., Invoked]]:
    """Invoke the handler in this process as the runner does (its event, its context and
    deadline) on a new instance, with the functions' environment (the proxy, the secret),
    reading its log lines."""
    for name, value in live.function_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(database, "_instance", threading.local())  # a connection of its own
    handler = consumer.logger.registered_handler

    def call(*orders: QueuedOrder, receives: int = 1) -> Invoked:
        messages = [received(order, receives) for order in orders]
        event = sqs_event(
            messages,
            f"arn:aws:sqs:{live.region}:000000000000:{live.queue_url.rsplit('/', 1)[-1]}",
            live.region,
        )
        lines = io.StringIO()
        previous = handler.setStream(lines)
        try:
            response = invoke_function(consumer.handler, event, "consumer", TIMEOUT_SECONDS)
        finally:
            handler.setStream(previous)
        ids = {m["MessageId"]: o.order_id for m, o in zip(messages, orders, strict=True)}
        logged = [json.loads(line) for line in lines.getvalue().splitlines()]
        return Invoked(
            [ids[f["itemIdentifier"]] for f in response["batchItemFailures"]],
            [(entry["message"], entry.get("order_id", "")) for entry in logged],
        )

    yield call
    conn = getattr(database._instance, "conn", None)
    if conn is not None:
        conn.close()


def received(order: QueuedOrder, receives: int) -> dict[str, Any]:
    """The order as ReceiveMessage returns it to the runner, on its ``receives``-th receive."""
    body = order.model_dump_json()
    return {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": "handle",
        "Body": body,
        "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "Attributes": {"ApproximateReceiveCount": str(receives), "MessageGroupId": order.order_id},
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
