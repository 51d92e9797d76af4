"""The queue's and the DLQ's depth over time, as the stack's CloudWatch keeps it.

SQS only tells the depth now; its history is in CloudWatch, where SQS reports each queue's
``ApproximateNumberOfMessages*`` metrics (on AWS every minute; LocalStack every
``alarms.METRICS_INTERVAL_SECONDS``, the interval `make up` sets). Reading it from there rather
than sampling from an open page means a host who opens or reloads the dashboard after a drill
still sees the drill's depth, and the chart and the DLQ alarm read the same numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sandbox import localstack
from sandbox.alarms import METRICS_INTERVAL_SECONDS, queue_name
from sandbox.state import StackState

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
