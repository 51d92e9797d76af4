"""The CloudWatch alarms both stacks set: the "DLQ not empty" alarm, and the local pace.

SQS keeps no record of a poison message beyond the DLQ itself; on AWS an alarm on the DLQ's depth
is what tells the operator. LocalStack reports its queues' metrics to its CloudWatch and evaluates
alarms, so `make up` sets the same alarm (one definition, read by the CDK app as well) and
`sandbox status` and the dashboard show its state. Locally it runs at workshop pace: SQS reports
its metrics every `METRICS_INTERVAL_SECONDS` instead of every minute, and the alarm's period is
`LOCAL_PERIOD_SECONDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

METRICS_INTERVAL_SECONDS = 5  # LocalStack's SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL
LOCAL_PERIOD_SECONDS = 10  # the shortest high-resolution alarm period CloudWatch allows


@dataclass(frozen=True)
class AlarmSpec:
    """What an alarm watches and when it fires; where (period, dimensions) is up to the caller."""

    name: str
    description: str
    metric_name: str
    statistic: str
    threshold: float
    comparison: str
    evaluation_periods: int = 1
    treat_missing_data: str = "notBreaching"


DLQ_NOT_EMPTY = AlarmSpec(
    name="dlq-not-empty",
    description="A message reached the DLQ: an order that can never commit.",
    metric_name="ApproximateNumberOfMessagesVisible",
    statistic="Maximum",
    threshold=1,
    comparison="GreaterThanOrEqualToThreshold",
)
