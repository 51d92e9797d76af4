"""The durable queue and its DLQ, built from `sandbox.spec.queue.QueueSettings`: the definition the
local sandbox creates in LocalStack, so type, retention, visibility timeout and ``maxReceiveCount``
cannot drift between the two."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from sandbox.spec.queue import QueueSettings


class Queues(Construct):
    """Queue names are left to CloudFormation (FIFO ones still end in ``.fifo``), so two stacks can
    share an account; the stack outputs say where they are."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: QueueSettings) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.dlq = sqs.Queue(self, "Dlq", **self._common())
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=Duration.seconds(settings.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=settings.max_receive_count
            ),
            **self._common(),
        )

    def _common(self) -> dict[str, Any]:
        fifo = self.settings.fifo
        return {
            "fifo": fifo or None,
            "content_based_deduplication": fifo or None,
            "retention_period": Duration.seconds(self.settings.retention_seconds),
            "encryption": sqs.QueueEncryption.SQS_MANAGED,
            "enforce_ssl": True,
        }
