"""A poison message (an order for an unknown customer) reaches the DLQ after exactly
maxReceiveCount receives, while the orders around it commit."""

from __future__ import annotations

import json
import uuid

from sandbox.ops.load import Client, order, poison_customer
from sandbox.standins import localstack
from tests.conftest import wait_drained, wait_for


def receives_of(live, message_id: str) -> list[tuple[int, bool]]:
    """(receive count, failed) of every delivery of one message, from the runner's log."""
    deliveries = []
    for line in live.path("logs", "consumer.log").read_text().splitlines():
        if '"invocation"' not in line:
            continue
        for record in json.loads(line)["records"]:
            if record["id"] == message_id:
                deliveries.append((record["receive_count"], record["failed"]))
    return deliveries


def test_a_poison_order_reaches_the_dlq_after_max_receive_count(live):
    prefix = f"poison-{uuid.uuid4().hex[:6]}"
    client = Client(live)
    before = [client.post(order(f"{prefix}-a{i}")) for i in range(10)]
    poison = client.http.post("/orders", json=order(f"{prefix}-x", poison_customer()))
    after = [client.post(order(f"{prefix}-b{i}")) for i in range(10)]
    client.close()
    assert poison.status_code == 202
    assert all(s.accepted for s in before + after)

    rows = wait_drained(live, prefix, 20)
    assert sorted(rows) == sorted(s.order_id for s in before + after)

    sqs = localstack.client(live, "sqs")
    parked = wait_for(
        lambda: sqs.receive_message(
            QueueUrl=live.dlq_url, WaitTimeSeconds=2, MessageSystemAttributeNames=["All"]
        ).get("Messages", []),
        "the poison order in the DLQ",
        interval=0,
    )
    assert [json.loads(m["Body"])["order_id"] for m in parked] == [f"{prefix}-x"]

    max_receives = live.queue.max_receive_count
    message_id = poison.json()["message_id"]
    assert receives_of(live, message_id) == [(n, True) for n in range(1, max_receives + 1)]
    sqs.delete_message(QueueUrl=live.dlq_url, ReceiptHandle=parked[0]["ReceiptHandle"])
