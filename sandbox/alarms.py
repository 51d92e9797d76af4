"""CloudWatch alarms: the deployed stack's "DLQ not empty" alarm, on LocalStack too.

SQS keeps no record of a poison message beyond the DLQ itself; on AWS an alarm on the DLQ's depth
is what tells the operator. LocalStack reports its queues' metrics to its CloudWatch and evaluates
alarms, so `make up` sets the same alarm (one definition, read by the CDK app as well) and
`sandbox status` and the dashboard show its state. Locally it runs at workshop pace: SQS reports
its metrics every `METRICS_INTERVAL_SECONDS` instead of every minute, and the alarm's period is
`LOCAL_PERIOD_SECONDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.state import StackState

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


def alarm_name(state: StackState, spec: AlarmSpec) -> str:
    return f"{queue_name(state.queue_url)}-{spec.name}"


def queue_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def ensure(cloudwatch: Any, state: StackState) -> None:
    """Create (or update) the DLQ alarm on the stack's DLQ."""
    spec = DLQ_NOT_EMPTY
    cloudwatch.put_metric_alarm(
        AlarmName=alarm_name(state, spec),
        AlarmDescription=spec.description,
        Namespace="AWS/SQS",
        MetricName=spec.metric_name,
        Dimensions=[{"Name": "QueueName", "Value": queue_name(state.dlq_url)}],
        Statistic=spec.statistic,
        Period=LOCAL_PERIOD_SECONDS,
        EvaluationPeriods=spec.evaluation_periods,
        Threshold=spec.threshold,
        ComparisonOperator=spec.comparison,
        TreatMissingData=spec.treat_missing_data,
    )


def states(cloudwatch: Any, state: StackState) -> dict[str, str]:
    """Each alarm's state (OK, ALARM, INSUFFICIENT_DATA), by its short name."""
    prefix = f"{queue_name(state.queue_url)}-"
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    return {alarm["AlarmName"].removeprefix(prefix): alarm["StateValue"] for alarm in alarms}
