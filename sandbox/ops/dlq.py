"""The dead-letter queue: see what is parked there and why, send it back, or throw it away.

SQS does not keep why a message failed; the consumer logs it ("order failed", with the order id
and the error), as a Lambda function's failures land in CloudWatch Logs, and the listing joins the
two by order id.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from sandbox.platform.state import StackState
from sandbox.standins import localstack
from sandbox.standins.aws_lambda.logs import failures
from sandbox.standins.sqs import arn, depth, journal, snapshot

Method = Literal["auto", "move-task", "manual"]
PEEK_LIMIT = 1000
#: A bound, not a wait: a redrive ends as soon as the DLQ is empty.
REDRIVE_TIMEOUT = 600.0


@dataclass
class Parked:
    """One message in the DLQ."""

    message_id: str
    order_id: str
    # Locally: deliveries to the consumer, from its log. On AWS (no log to read): SQS's
    # ApproximateReceiveCount, which also counts every peek, the one that listed it included.
    receives: int
    first_received: float | None
    sent: float
    last_error: str  # locally the consumer's; on AWS where to find it (SQS does not keep it)
    body: str = field(repr=False)
    attributes: dict[str, str] = field(repr=False)


def peek(state: StackState) -> list[Parked]:
    """A snapshot of the DLQ that leaves every message in it (received, then made visible again)."""
    sqs = localstack.client(state, "sqs")
    messages = snapshot(sqs, state.dlq_url, limit=PEEK_LIMIT)
    known = failures(state)
    return [_parked(m, known) for m in messages]


def _parked(message: dict[str, Any], known: dict[str, dict[str, Any]]) -> Parked:
    failure = known.get(order_id(message), {})
    error = failure.get("error", "")
    return from_sqs(
        message,
        receives=int(failure.get("receive_count", 0)),
        last_error=error.splitlines()[0] if error else "",
    )


def from_sqs(message: dict[str, Any], *, receives: int, last_error: str) -> Parked:
    """A received DLQ message (with its system attributes), plus what SQS cannot tell."""
    attributes = message.get("Attributes", {})
    first = attributes.get("ApproximateFirstReceiveTimestamp")
    return Parked(
        message_id=message["MessageId"],
        order_id=order_id(message),
        receives=receives,
        first_received=int(first) / 1000 if first else None,
        sent=int(attributes.get("SentTimestamp", 0)) / 1000,
        last_error=last_error,
        body=message["Body"],
        attributes=attributes,
    )


def order_id(message: dict[str, Any]) -> str:
    """The order id in a message's body; "?" for a body that is not an order."""
    try:
        return json.loads(message["Body"])["order_id"]
    except (ValueError, KeyError, TypeError):
        return "?"


def show(state: StackState, key: str) -> Parked:
    """One parked message, by message id or order id."""
    for parked in peek(state):
        if key in (parked.message_id, parked.order_id):
            return parked
    raise LookupError(f"no message {key!r} in the DLQ")


def redrive(
    state: StackState, method: Method = "auto", timeout: float = REDRIVE_TIMEOUT
) -> tuple[int, str]:
    """Move every DLQ message back to the queue; returns (moved, method used).

    ``move-task`` is SQS's StartMessageMoveTask; ``manual`` receives, re-sends and deletes, for
    endpoints without it. ``auto`` uses the move task on a standard queue (falling back to manual
    if the endpoint lacks it) and manual on a FIFO queue: LocalStack's move task keeps each
    message's deduplication id, so a message redriven within 5 minutes of its first send is
    dropped as a duplicate (seen here); the manual path sends it with a fresh one.
    """
    if method not in ("auto", "move-task", "manual"):
        raise ValueError("method must be auto, move-task or manual")
    began = time.time()
    moved = None
    if method == "move-task" or (method == "auto" and not state.queue.fifo):
        try:
            moved = _move_task(state, timeout), "move-task"
        except ClientError as error:
            if method == "move-task":
                raise RuntimeError(f"StartMessageMoveTask failed: {error}") from None
    moved = moved or (_resend(state, timeout), "manual")
    # Done: what was parked before it began is back in the queue, for a restore to know (one
    # that failed half-way writes nothing, and a restore puts those back in the DLQ, not lost).
    journal.mark(state.run_dir, "redriven", began)
    return moved


def _move_task(state: StackState, timeout: float) -> int:
    sqs = localstack.client(state, "sqs")
    source = arn(sqs, state.dlq_url)
    sqs.start_message_move_task(SourceArn=source, DestinationArn=arn(sqs, state.queue_url))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = sqs.list_message_move_tasks(SourceArn=source, MaxResults=1)["Results"][0]
        if task["Status"] == "COMPLETED":
            return int(task.get("ApproximateNumberOfMessagesMoved", 0))
        if task["Status"] in ("FAILED", "CANCELLED"):
            raise RuntimeError(f"move task {task['Status']}: {task.get('FailureReason', '')}")
        time.sleep(0.2)
    raise TimeoutError(f"move task still running after {timeout:.0f} s")


def _resend(state: StackState, timeout: float) -> int:
    """Receive, send to the source queue, then delete: a copy exists at every moment.

    Done when the DLQ is empty, visible and in flight: an empty receive alone does not say so,
    since a message someone is peeking at (or one whose re-send failed) is in flight meanwhile.
    """
    sqs = localstack.client(state, "sqs")
    deadline = time.monotonic() + timeout
    moved = 0
    while True:
        batch = sqs.receive_message(
            QueueUrl=state.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=30
        ).get("Messages", [])
        if batch:
            moved += _send_back(state, sqs, batch)
        elif depth(sqs, state.dlq_url).total == 0:
            return moved
        if time.monotonic() > deadline:
            raise TimeoutError(f"DLQ redrive: messages still in the DLQ after {timeout:.0f} s")


def _send_back(state: StackState, sqs: Any, batch: list[dict[str, Any]]) -> int:
    """One received batch to the source queue, then deleted from the DLQ; returns how many."""
    fifo = state.queue_url.endswith(".fifo")
    entries = []
    for i, message in enumerate(batch):
        entry = {"Id": str(i), "MessageBody": message["Body"]}
        if fifo:  # a fresh dedup id: the original may still be inside its 5-minute window
            group = json.loads(message["Body"]).get("order_id", message["MessageId"])
            entry |= {"MessageGroupId": group, "MessageDeduplicationId": uuid.uuid4().hex}
        entries.append(entry)
    sent = sqs.send_message_batch(QueueUrl=state.queue_url, Entries=entries)
    done = {int(s["Id"]) for s in sent.get("Successful", [])}
    if not done:
        raise RuntimeError(f"could not send back to the queue: {sent.get('Failed')}")
    sqs.delete_message_batch(
        QueueUrl=state.dlq_url,
        Entries=[{"Id": str(i), "ReceiptHandle": batch[i]["ReceiptHandle"]} for i in done],
    )
    return len(done)


def purge(state: StackState) -> int:
    """Delete every DLQ message; returns how many there were."""
    sqs = localstack.client(state, "sqs")
    count = depth(sqs, state.dlq_url).total
    began = time.time()
    sqs.purge_queue(QueueUrl=state.dlq_url)
    journal.mark(state.run_dir, "purged", began)  # thrown away on purpose: never restored
    return count
