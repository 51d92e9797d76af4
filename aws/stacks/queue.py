"""The durable queue and its DLQ, built from `sandbox.spec.queue.QueueSettings`: the definition the
local sandbox creates in LocalStack, so type, retention and the redrive policy's shape cannot drift
between the two (the deployed values are `sandbox.spec.timings.AWS.queue`).

The queues hold accepted orders that are not yet committed, so they outlive the stack: both, and
the key they are encrypted with, are retained when the stack is deleted or a change would replace
them (a deleted key would make a retained queue's messages unreadable).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from sandbox.spec.queue import QueueSettings


class Queues(Construct):
    """Queue names end in the stack's unique id (``orders-<stack guid>.fifo``), not a name
    CloudFormation makes up: two stacks can share an account, a stack deployed again after
    ``make destroy`` does not collide with the queues the last one left, and the DLQ's
    redrive-allow policy can name its source queue without a circular reference."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: QueueSettings) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.key = kms.Key(
            self,
            "QueueKey",
            description="Encrypts the orders queue and its DLQ",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        queue_name = self._name(settings.name)
        source_arn = Stack.of(self).format_arn(service="sqs", resource=queue_name)
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            queue_name=self._name(f"{settings.name}-dlq"),
            # Only the orders queue may send its failures here.
            redrive_allow_policy=sqs.RedriveAllowPolicy(
                redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                source_queues=[sqs.Queue.from_queue_arn(self, "Source", source_arn)],
            ),
            **self._common(),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=queue_name,
            visibility_timeout=Duration.seconds(settings.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=settings.max_receive_count
            ),
            **self._common(),
        )

    def _name(self, base: str) -> str:
        stack_guid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
        return f"{base}-{stack_guid}{'.fifo' if self.settings.fifo else ''}"

    def _common(self) -> dict[str, Any]:
        fifo = self.settings.fifo
        return {
            "fifo": fifo or None,
            "content_based_deduplication": fifo or None,
            "retention_period": Duration.seconds(self.settings.retention_seconds),
            "encryption": sqs.QueueEncryption.KMS,
            "encryption_master_key": self.key,
            "enforce_ssl": True,
            "removal_policy": RemovalPolicy.RETAIN,
        }
