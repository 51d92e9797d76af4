"""The durable queue and its dead-letter queue: their settings, shared with the CDK app.

`QueueSettings` is the one definition of the queue that both the local sandbox (LocalStack) and
the CDK app in ``aws/`` read, so the two can never drift apart. Its defaults are the guidance's
(FIFO with content-based deduplication, 14 days of retention, a redrive to the DLQ after 25
failed receives) but for one: a 6 s visibility timeout, not the guidance's 5 s, so the consumer's
1 s timeout (Lambda's shortest) keeps AWS's rule of a visibility timeout at least six times the
function's (`function_timeout_for`). The guidance's 5 s lives on in its sample's profile. These
are the local drills' values; the deployed stack's, sized for a real Aurora failover, and the rule
both keep are in `sandbox.spec.timings`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sandbox.spec.choices import QueueType

FOURTEEN_DAYS = 14 * 24 * 3600
#: AWS: "set the source queue's visibility timeout to at least six times the timeout that you
#: configure on your function", so a batch retried after throttling is not redelivered meanwhile.
VISIBILITY_RATIO = 6
LAMBDA_MIN_TIMEOUT_SECONDS = 1


def function_timeout_for(visibility_timeout_seconds: int) -> int:
    """The consumer's timeout for a queue: the longest whole second that keeps the visibility
    timeout >= 6x it, but at least 1 s (Lambda's shortest; under 6 s the ratio cannot hold)."""
    return max(LAMBDA_MIN_TIMEOUT_SECONDS, visibility_timeout_seconds // VISIBILITY_RATIO)


@dataclass(frozen=True)
class QueueSettings:
    """The queue's shape. Every field is a knob the workshop can turn."""

    name: str = "orders"
    type: QueueType = "fifo"
    retention_seconds: int = FOURTEEN_DAYS
    visibility_timeout_seconds: int = 6
    max_receive_count: int = 25

    @property
    def fifo(self) -> bool:
        return self.type == "fifo"

    @property
    def queue_name(self) -> str:
        return f"{self.name}.fifo" if self.fifo else self.name

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq.fifo" if self.fifo else f"{self.name}-dlq"

    def queue_attributes(self, dlq_arn: str) -> dict[str, str]:
        """SQS attributes of the source queue, with its redrive policy pointing at the DLQ."""
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receive_count}
        return self._common() | {
            "VisibilityTimeout": str(self.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(redrive),
        }

    def dlq_attributes(self) -> dict[str, str]:
        return self._common()

    def _common(self) -> dict[str, str]:
        attributes = {"MessageRetentionPeriod": str(self.retention_seconds)}
        if self.fifo:
            attributes |= {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        return attributes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
