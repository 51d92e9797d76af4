"""The dead-letter queue: see what is parked there and why, send it back, or throw it away.

SQS does not keep why a message failed; the consumer logs it ("order failed", with the order id
and the error), as a Lambda function's failures land in CloudWatch Logs, and the listing joins the
two by order id. The same log shows the orders failing in the queue before they are parked, their
receive count climbing towards maxReceiveCount.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import psycopg
from botocore.exceptions import ClientError

from sandbox.platform.hints import command as hint
from sandbox.platform.state import StackState
from sandbox.standins import localstack
from sandbox.standins.aurora import database
from sandbox.standins.aws_lambda.logs import failures, logged_at
from sandbox.standins.sqs import arn, depth, journal, snapshot

Method = Literal["auto", "move-task", "manual"]
PEEK_LIMIT = 1000
#: A bound, not a wait: a redrive ends as soon as the DLQ is empty.
REDRIVE_TIMEOUT = 600.0
#: PostgreSQL's word for an order whose customer does not exist (the foreign key's DETAIL line).
MISSING_CUSTOMER = re.compile(r"Key \(customer_id\)=\((\d+)\) is not present")


@dataclass
class Parked:
    """One message in the DLQ."""

    message_id: str
    order_id: str
    # Locally: deliveries to the consumer before SQS parked it (maxReceiveCount), from its log.
    # On AWS (no log to read): SQS's ApproximateReceiveCount, which also counts every peek.
    receives: int
    # SQS's ApproximateFirstReceiveTimestamp: in LocalStack's DLQ the first look at it there (a
    # peek), not its first delivery to the consumer; not shown for that reason.
    first_received: float | None
    sent: float  # when the order was queued: the API's acceptance in its body, else SentTimestamp
    last_error: str  # locally the consumer's; on AWS where to find it (SQS does not keep it)
    body: str = field(repr=False)
    attributes: dict[str, str] = field(repr=False)
    last_failed: float | None = None  # the consumer's last failure (locally), before SQS parked it
    missing_customer: int | None = None  # the customer its insert did not find: the fix adds it
    fixed: bool = False  # that customer exists now (`mark_fixed`): a redrive is what is left

    @property
    def receives_in_dlq(self) -> int | None:
        """Receives since it was parked (SQS's ApproximateReceiveCount beyond the consumer's):
        every look at the DLQ (`dlq list`, `dlq show`, the dashboard) receives each message once.
        None where the two counts are one (on AWS)."""
        total = self.attributes.get("ApproximateReceiveCount")
        if self.last_failed is None or total is None:
            return None
        return max(0, int(total) - self.receives)


@dataclass(frozen=True)
class Failing:
    """An order the consumer failed on that is not parked (yet): in the queue, retried after
    each visibility timeout until SQS parks it at maxReceiveCount, or it commits."""

    order_id: str
    receives: int  # so far, of maxReceiveCount
    last_failed: float
    last_error: str
    missing_customer: int | None


def peek(state: StackState) -> list[Parked]:
    """A snapshot of the DLQ that leaves every message in it (received, then made visible again)."""
    sqs = localstack.client(state, "sqs")
    messages = snapshot(sqs, state.dlq_url, limit=PEEK_LIMIT)
    known = failures(state)
    return [_parked(m, known) for m in messages]


def _parked(message: dict[str, Any], known: dict[str, dict[str, Any]]) -> Parked:
    failure = known.get(order_id(message))
    parked = from_sqs(
        message,
        receives=int(failure.get("receive_count", 0)) if failure else 0,
        last_error=first_line(failure.get("error", "")) if failure else "",
    )
    if failure:
        parked.last_failed = logged_at(failure) or None
        parked.missing_customer = missing_customer(failure.get("error", ""))
    return parked


def from_sqs(message: dict[str, Any], *, receives: int, last_error: str) -> Parked:
    """A received DLQ message (with its system attributes), plus what SQS cannot tell."""
    attributes = message.get("Attributes", {})
    first = attributes.get("ApproximateFirstReceiveTimestamp")
    return Parked(
        message_id=message["MessageId"],
        order_id=order_id(message),
        receives=receives,
        first_received=int(first) / 1000 if first else None,
        sent=_accepted(message) or int(attributes.get("SentTimestamp", 0)) / 1000,
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


def _accepted(message: dict[str, Any]) -> float | None:
    """When the API accepted the order (its body's ``accepted_at``): when it was sent to the
    queue, whatever a move to the DLQ did to SQS's own timestamps."""
    try:
        return datetime.fromisoformat(json.loads(message["Body"])["accepted_at"]).timestamp()
    except (ValueError, KeyError, TypeError):
        return None


def first_line(error: str) -> str:
    return error.splitlines()[0] if error else ""


def missing_customer(error: str) -> int | None:
    """The customer a failed insert did not find (the poison order's), if that is why."""
    found = MISSING_CUSTOMER.search(error)
    return int(found.group(1)) if found else None


def mark_fixed(state: StackState, parked: list[Parked]) -> list[Parked]:
    """``parked``, each whose missing customer has been added since marked `Parked.fixed`: one
    bounded look at the writer; while it does not answer, none is marked (the listing then
    names the fix, which says that the customer exists if it does)."""
    waiting = sorted({p.missing_customer for p in parked if p.missing_customer is not None})
    if not waiting:
        return parked

    def known(conn: psycopg.Connection) -> set[int]:
        rows = conn.execute(
            "SELECT customer_id FROM customers WHERE customer_id = ANY(%s)", (waiting,)
        )
        return {row[0] for row in rows}

    try:
        added = database.quickly(state, state.writer.name, known, dbname=state.db_name)
    except psycopg.Error:
        return parked
    for message in parked:
        message.fixed = message.missing_customer in added
    return parked


def fix_command(customer_id: int) -> str:
    """The command that lets an order for an unknown ``customer_id`` commit."""
    return hint(f"customer add {customer_id}")


def failing(state: StackState, parked: list[Parked], now: float | None = None) -> list[Failing]:
    """Orders failing in the queue, not parked: the consumer's last word on them is a failure
    from the last few visibility timeouts (an older one is of a message gone since). One at
    maxReceiveCount is parked at its next receive."""
    now = time.time() if now is None else now
    window = 3 * state.queue.visibility_timeout_seconds + 30
    in_dlq = {p.order_id for p in parked}
    found = []
    for order, entry in failures(state).items():
        at = logged_at(entry)
        if order in in_dlq or now - at > window:
            continue
        error = entry.get("error", "")
        found.append(
            Failing(
                order,
                int(entry.get("receive_count", 0)),
                at,
                first_line(error),
                missing_customer(error),
            )
        )
    return sorted(found, key=lambda f: f.last_failed)


def find(parked: list[Parked], key: str) -> Parked:
    """The one parked message whose message id or order id is ``key``, or starts with it (a
    prefix copied from a listing cut short); refuses an ambiguous or unknown key, in words."""
    exact = [p for p in parked if key in (p.message_id, p.order_id)]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [
        p for p in parked if key and (p.message_id.startswith(key) or p.order_id.startswith(key))
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        # One order parked twice (sent again under its id) is told apart by its message ids.
        orders = {p.order_id for p in matches}
        named = sorted(orders if len(orders) > 1 else {p.message_id for p in matches})
        listed = ", ".join(named[:3]) + (", ..." if len(named) > 3 else "")
        raise LookupError(
            f"{key!r} matches {len(matches)} messages in the DLQ ({listed}): give more of the id"
        )
    raise LookupError(
        f"no message {key!r} in the DLQ ({len(parked)} there: `{hint('dlq list')}` names them)"
    )


@dataclass(frozen=True)
class Fixed:
    """A customer the fix added, or found there already, and the orders that wait for it."""

    customer_id: int
    added: bool  # False: it existed already (added since the orders failed), nothing changed
    order_ids: tuple[str, ...]


def fix_parked(state: StackState, name: str = "added in the workshop") -> list[Fixed]:
    """Add the customers that the parked orders, and those failing in the queue, wait for (the
    dashboard's fix, `sandbox customer add --parked`), by customer id."""
    parked = peek(state)
    waiting: dict[int, list[str]] = {}
    for order in [*parked, *failing(state, parked)]:
        if order.missing_customer is not None:
            waiting.setdefault(order.missing_customer, []).append(order.order_id)
    return [
        Fixed(customer, database.add_customer(state, customer, name), tuple(orders))
        for customer, orders in sorted(waiting.items())
    ]


def show(state: StackState, key: str) -> Parked:
    """One parked message, by message id or order id, or a unique prefix of one (`find`)."""
    return find(peek(state), key)


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
    seen = {order_id(m) for m in snapshot(sqs, state.dlq_url, limit=PEEK_LIMIT)}
    sqs.purge_queue(QueueUrl=state.dlq_url)
    # Thrown away on purpose: never restored. Those seen in it surely; any other parked before
    # the purge by the mark's time (one on its way then is kept: SQS would not have purged it).
    journal.forget(state.run_dir, seen, began)
    journal.mark(state.run_dir, "purged", began)
    return count
