"""The alarms behind a page: each on the alarm topic (alarm and OK), on the metric AWS publishes for
it, and, for the causes a failover produces by design, only once they outlast one."""

from __future__ import annotations

import pytest

from aws.stacks.monitoring import REPLICA_LAG_MS, SUSTAINED
from sandbox.spec.timings import AURORA_FAILOVER_SECONDS, AWS, FAILOVER_MULTIPLE


def _alarm(synth, name: str) -> dict:
    alarm = synth.stack.monitoring.node.find_child(name)
    return synth.resources[synth.logical_id(alarm)]["Properties"]


def test_every_alarm_pages_through_the_topic_and_says_when_it_clears(synth) -> None:
    topic = {"Ref": synth.logical_id(synth.stack.monitoring.topic)}
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    mine = {synth.logical_id(alarm) for alarm in synth.stack.monitoring.alarms}
    assert len(mine) == 7 and mine <= set(alarms)
    for alarm_id in mine:
        props = alarms[alarm_id]["Properties"]
        assert props["AlarmActions"] == props["OKActions"] == [topic], alarm_id
        assert props["AlarmDescription"], alarm_id


def test_a_cause_alarm_outlasts_the_failovers_the_budget_is_sized_for() -> None:
    assert SUSTAINED * 60 > FAILOVER_MULTIPLE * AURORA_FAILOVER_SECONDS
    assert SUSTAINED == 3


@pytest.mark.parametrize(
    ("name", "namespace", "metric", "statistic", "dimension"),
    [
        ("ConsumerErrors", "AWS/Lambda", "Errors", "Sum", "FunctionName"),
        ("ApiServerErrors", "AWS/ApiGateway", "5XXError", "Sum", "ApiName"),
        ("ProxyBorrowSlow", "AWS/RDS", "DatabaseConnectionsBorrowLatency", "Average", "ProxyName"),
        ("ReplicaLag", "AWS/RDS", "AuroraReplicaLag", "Maximum", "DBClusterIdentifier"),
    ],
)
def test_cause_alarms_need_sustained_trouble(
    synth, name: str, namespace: str, metric: str, statistic: str, dimension: str
) -> None:
    props = _alarm(synth, name)
    assert (props["Namespace"], props["MetricName"], props["Statistic"]) == (
        namespace,
        metric,
        statistic,
    )
    assert dimension in {d["Name"] for d in props["Dimensions"]}
    assert props["Period"] == 60
    assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == SUSTAINED
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["TreatMissingData"] == "notBreaching"


def test_consumer_alarms_watch_the_consumer(synth) -> None:
    consumer = {"Ref": synth.logical_id(synth.stack.functions.consumer)}
    for name in ("ConsumerErrors", "ConsumerThrottles"):
        assert _alarm(synth, name)["Dimensions"] == [{"Name": "FunctionName", "Value": consumer}]


def test_any_consumer_throttle_alarms_at_once(synth) -> None:
    props = _alarm(synth, "ConsumerThrottles")
    assert (props["MetricName"], props["Threshold"], props["EvaluationPeriods"]) == (
        "Throttles",
        1,
        1,
    )


def test_thresholds(synth) -> None:
    # Microseconds: half the proxy's borrow timeout, on average.
    assert _alarm(synth, "ProxyBorrowSlow")["Threshold"] == (
        AWS.proxy_borrow_timeout_seconds * 1_000_000 / 2
    )
    lag = _alarm(synth, "ReplicaLag")
    assert lag["Threshold"] == REPLICA_LAG_MS
    assert {"Name": "Role", "Value": "READER"} in lag["Dimensions"]
    assert _alarm(synth, "ApiServerErrors")["Dimensions"] == [
        {"Name": "ApiName", "Value": synth.stack.api.api.rest_api_name}
    ]
