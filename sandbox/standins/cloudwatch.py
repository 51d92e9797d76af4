"""The CloudWatch stand-in (LocalStack's): the DLQ alarm set and read, and the queue's and the
DLQ's depth over time.

On AWS an alarm on the DLQ's depth is what tells the operator of a poison message; `make up`
sets the same alarm (`sandbox.spec.alarms`, read by the CDK app too), and `sandbox status` and
the dashboard show its state.

SQS only tells the depth now; its history is in CloudWatch, where SQS reports each queue's
``ApproximateNumberOfMessages*`` metrics (on AWS every minute; LocalStack every
``METRICS_INTERVAL_SECONDS``, the interval `make up` sets). Reading it from there rather
than sampling from an open page means a host who opens or reloads the dashboard after a drill
still sees the drill's depth, and the chart and the DLQ alarm read the same numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sandbox.platform.state import StackState
from sandbox.spec.alarms import (
    DLQ_NOT_EMPTY,
    LOCAL_PERIOD_SECONDS,
    METRICS_INTERVAL_SECONDS,
    AlarmSpec,
)
from sandbox.standins import localstack

# (query id, queue, metric): the chart's series are sums of these.
_QUERIES = [
    ("queue_visible", "queue", "ApproximateNumberOfMessagesVisible"),
    ("queue_in_flight", "queue", "ApproximateNumberOfMessagesNotVisible"),
    ("dlq_visible", "dlq", "ApproximateNumberOfMessagesVisible"),
    ("dlq_in_flight", "dlq", "ApproximateNumberOfMessagesNotVisible"),
]


# (run dir, window) -> (when asked, the answer). The series only grows once per report interval,
# so every open tab refreshing every second asks LocalStack once per interval, not five times.
_answers: dict[tuple[str, float], tuple[float, list[dict[str, Any]]]] = {}


def depths(state: StackState, seconds: float, now: float) -> list[dict[str, Any]]:
    """The last ``seconds`` of depth, oldest first, one sample per report interval:
    ``{"time", "visible", "in flight", "DLQ"}`` (the DLQ's visible and in flight together)."""
    asked, answer = _answers.get((state.run_dir, seconds), (-math.inf, []))
    if 0 <= now - asked < METRICS_INTERVAL_SECONDS:
        return answer
    answer = _ask(state, seconds, now)
    _answers[(state.run_dir, seconds)] = (now, answer)
    return answer


def _ask(state: StackState, seconds: float, now: float) -> list[dict[str, Any]]:
    urls = {"queue": state.queue_url, "dlq": state.dlq_url}
    answer = localstack.client(state, "cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "QueueName", "Value": queue_name(urls[queue])}],
                    },
                    "Period": METRICS_INTERVAL_SECONDS,
                    "Stat": "Maximum",
                },
            }
            for query_id, queue, metric in _QUERIES
        ],
        StartTime=dt.datetime.fromtimestamp(now - seconds, dt.UTC),
        EndTime=dt.datetime.fromtimestamp(now, dt.UTC),
    )
    return samples(answer["MetricDataResults"])


def samples(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GetMetricData's results (one per query, always all four, empty before SQS reported) ->
    one sample per time all four series reported (a time one of them missed would draw a false
    drop to 0)."""
    series = {
        result["Id"]: dict(zip(result["Timestamps"], result["Values"], strict=True))
        for result in results
    }
    times = set.intersection(*(set(values) for values in series.values()))
    return [
        {
            "time": when.timestamp(),
            "visible": int(series["queue_visible"][when]),
            "in flight": int(series["queue_in_flight"][when]),
            "DLQ": int(series["dlq_visible"][when] + series["dlq_in_flight"][when]),
        }
        for when in sorted(times)
    ]


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
