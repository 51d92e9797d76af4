"""The depth history read from CloudWatch: GetMetricData's four series -> the chart's samples."""

from __future__ import annotations

import datetime as dt

from sandbox.platform.state import StackState
from sandbox.spec.alarms import METRICS_INTERVAL_SECONDS
from sandbox.standins import cloudwatch
from sandbox.standins.cloudwatch import samples


def at(second: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(1_000_000 + second, dt.UTC)


def result(query_id: str, values: dict[int, float]) -> dict:
    # GetMetricData answers newest first
    ordered = sorted(values.items(), reverse=True)
    return {
        "Id": query_id,
        "Timestamps": [at(s) for s, _ in ordered],
        "Values": [v for _, v in ordered],
    }


def test_samples_are_oldest_first_with_the_dlq_summed():
    results = [
        result("queue_visible", {0: 3.0, 5: 40.0}),
        result("queue_in_flight", {0: 1.0, 5: 10.0}),
        result("dlq_visible", {0: 0.0, 5: 1.0}),
        result("dlq_in_flight", {0: 0.0, 5: 2.0}),
    ]
    assert samples(results) == [
        {"time": 1_000_000.0, "visible": 3, "in flight": 1, "DLQ": 0},
        {"time": 1_000_005.0, "visible": 40, "in flight": 10, "DLQ": 3},
    ]


def test_a_time_one_series_missed_is_left_out_not_drawn_as_zero():
    results = [
        result("queue_visible", {0: 3.0, 5: 40.0}),
        result("queue_in_flight", {0: 1.0}),
        result("dlq_visible", {0: 0.0, 5: 0.0}),
        result("dlq_in_flight", {0: 0.0, 5: 0.0}),
    ]
    assert [s["time"] for s in samples(results)] == [1_000_000.0]


def test_no_metrics_yet_is_no_samples():
    assert samples([result(q, {}) for q in ("queue_visible", "queue_in_flight")]) == []


def test_localstack_is_asked_once_per_report_interval_per_stack(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(cloudwatch, "_answers", {})
    monkeypatch.setattr(cloudwatch, "_ask", lambda state, seconds, now: asked.append(now) or [now])
    one, two = (StackState(str(tmp_path / n), "", "", ports={}, nodes={}) for n in "ab")
    interval = METRICS_INTERVAL_SECONDS
    # every refresh of every tab inside one interval gets the first answer
    assert [cloudwatch.depths(one, 300, 100 + t) for t in (0, 1, interval - 0.1)] == [[100]] * 3
    assert cloudwatch.depths(two, 300, 101) == [101]  # another stack asks for itself
    assert cloudwatch.depths(one, 300, 100 + interval) == [100 + interval]  # the series has grown
    assert asked == [100, 101, 100 + interval]
