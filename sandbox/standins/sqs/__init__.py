"""The SQS stand-in's setup and reads: the queue and its DLQ created from `QueueSettings`
(`sandbox.spec.queue`, the shape the CDK app declares too), their depth, a look at what they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.spec.queue import QueueSettings


@dataclass(frozen=True)
class Queues:
    """Where the provisioned queue and DLQ live."""

    url: str
    arn: str
    dlq_url: str
    dlq_arn: str


def ensure_queues(sqs: Any, settings: QueueSettings) -> Queues:
    """Create the DLQ, then the queue that redrives to it (idempotent: safe to run again)."""
    dlq_url = sqs.create_queue(QueueName=settings.dlq_name, Attributes=settings.dlq_attributes())[
        "QueueUrl"
    ]
    dlq_arn = arn(sqs, dlq_url)
    url = sqs.create_queue(
        QueueName=settings.queue_name, Attributes=settings.queue_attributes(dlq_arn)
    )["QueueUrl"]
    return Queues(url=url, arn=arn(sqs, url), dlq_url=dlq_url, dlq_arn=dlq_arn)


@dataclass(frozen=True)
class Depth:
    """Approximate message counts, as SQS (and CloudWatch) report them."""

    visible: int
    in_flight: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight


def depth(sqs: Any, url: str) -> Depth:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return Depth(
        visible=int(attributes["ApproximateNumberOfMessages"]),
        in_flight=int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def arn(sqs: Any, url: str) -> str:
    """The queue's ARN (what redrive policies and move tasks name it by)."""
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def snapshot(sqs: Any, url: str, *, limit: int = 1000, poll_every: bool = False) -> list[dict]:
    """Every message in a queue, left in it: received (up to ``limit``), then made visible again.

    The first receive waits a second for messages to appear. ``poll_every`` makes every receive
    wait: SQS's short polls sample a subset of its servers and may come back empty while messages
    remain (LocalStack's do not). Receiving counts towards a message's receive count, as on AWS.
    """
    messages: list[dict[str, Any]] = []
    while len(messages) < limit:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            WaitTimeSeconds=1 if poll_every or not messages else 0,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            break
        messages.extend(got)
    release(sqs, url, messages)
    return messages


def release(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    """Received messages visible again at once (each still counts the receive, as on AWS)."""
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
