"""The AWS drill's control-plane steps, against botocore's Stubber: every call the target makes must
be the one queued here, with exactly these parameters, in this order, and none may be left over.

Nothing here reaches AWS, and nothing in the AWS drill has been run against AWS.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from sandbox import cli
from sandbox.drills import drill
from sandbox.drills.targets import Commit
from sandbox.drills.targets import aws as aws_target
from sandbox.drills.targets.aws import AwsTarget
from sandbox.ops.load import Api, Sent, send_orders
from sandbox.spec.choices import FAULTS

STACK = "NearZeroRpo"
T0 = 1_700_000_000.0
OUTPUTS = {
    "CloudFrontUrl": "https://d111.cloudfront.net/",
    "ApiUrl": "https://abc.execute-api.us-east-1.amazonaws.com/prod/",
    "UserPoolId": "us-east-1_pool",
    "UserPoolClientId": "client-1",
    "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo",
    "QueueArn": "arn:aws:sqs:us-east-1:123456789012:orders.fifo",
    "DlqUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq.fifo",
    "DlqArn": "arn:aws:sqs:us-east-1:123456789012:orders-dlq.fifo",
    "ClusterId": "nearzerorpo-cluster",
    "ReconcileFunctionName": "NearZeroRpo-Reconcile",
    "ConsumerFunctionName": "NearZeroRpo-Consumer",
    "FailoverExperimentTemplateId": "EXTfailover",
    "ConsumerFaultExperimentTemplateId": "EXTconsumer",
    "DirectPath": "enabled",
}
DEPTH_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


class Clock:
    """Time that moves only when the target sleeps, so waits are instant and exact."""

    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Stubs:
    """One stubbed client per service the target uses, handed out by service name."""

    SERVICES = ("cloudformation", "cognito-idp", "rds", "sqs", "lambda", "fis", "cloudwatch")

    def __init__(self) -> None:
        self.clients = {
            name: boto3.client(
                name,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            for name in self.SERVICES
        }
        self.stubbers = {name: Stubber(client) for name, client in self.clients.items()}

    def __getitem__(self, service: str) -> Stubber:
        return self.stubbers[service]

    def client(self, service: str) -> Any:
        return self.clients[service]

    def activate(self) -> None:
        for stubber in self.stubbers.values():
            stubber.activate()

    def verify(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    stubs = Stubs()
    stubs.activate()
    yield stubs
    stubs.verify()  # every queued call was made


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def target(stubs: Stubs, clock: Clock) -> AwsTarget:
    return AwsTarget(STACK, clients=stubs.client, now=clock.time, sleep=clock.sleep)


def stack_described(stubs: Stubs, outputs: dict[str, str] | None = None, status: str = "") -> None:
    stubs["cloudformation"].add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": STACK,
                    "CreationTime": datetime(2025, 1, 1, tzinfo=UTC),
                    "StackStatus": status or "CREATE_COMPLETE",
                    "Outputs": [
                        {"OutputKey": k, "OutputValue": v} for k, v in (outputs or OUTPUTS).items()
                    ],
                }
            ]
        },
        {"StackName": STACK},
    )


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def rds_event(message: str, epoch: float) -> dict[str, Any]:
    return {
        "SourceIdentifier": OUTPUTS["ClusterId"],
        "SourceType": "db-cluster",
        "Message": message,
        "EventCategories": ["failover"],
        "Date": at(epoch),
    }


def events_described(stubs: Stubs, since: float, *events: dict[str, Any]) -> None:
    stubs["rds"].add_response(
        "describe_events",
        {"Events": list(events)},
        {
            "SourceIdentifier": OUTPUTS["ClusterId"],
            "SourceType": "db-cluster",
            "StartTime": at(since),
        },
    )


def payload(body: Any) -> StreamingBody:
    data = json.dumps(body).encode()
    return StreamingBody(io.BytesIO(data), len(data))


# -- the stack's outputs -------------------------------------------------------------------------


def test_outputs_are_read_once_from_describe_stacks(stubs, target) -> None:
    stack_described(stubs)
    outputs = target.outputs
    assert outputs.cloudfront_url == OUTPUTS["CloudFrontUrl"]
    assert (outputs.user_pool_id, outputs.user_pool_client_id) == ("us-east-1_pool", "client-1")
    assert (outputs.queue_url, outputs.dlq_url) == (OUTPUTS["QueueUrl"], OUTPUTS["DlqUrl"])
    assert (outputs.queue_arn, outputs.dlq_arn) == (OUTPUTS["QueueArn"], OUTPUTS["DlqArn"])
    assert outputs.cluster_id == "nearzerorpo-cluster"
    assert outputs.reconcile_function == "NearZeroRpo-Reconcile"
    assert target.paths == ("queue", "direct")
    assert target.outputs is outputs  # a second read would be an unstubbed call


def test_a_stack_without_the_direct_path_drills_the_queue_only(stubs, target) -> None:
    stack_described(stubs, OUTPUTS | {"DirectPath": "disabled"})
    assert target.paths == ("queue",)
    assert drill._paths(target, "both") == ["queue"]
    with pytest.raises(ValueError, match="has no direct path"):
        drill._paths(target, "direct")


def test_a_missing_output_is_named(stubs, target) -> None:
    stack_described(stubs, {k: v for k, v in OUTPUTS.items() if k != "ReconcileFunctionName"})
    with pytest.raises(ValueError, match="no output ReconcileFunctionName"):
        _ = target.outputs


def test_a_stack_mid_change_is_not_drilled(stubs, target) -> None:
    stack_described(stubs, status="UPDATE_IN_PROGRESS")
    with pytest.raises(RuntimeError, match="is UPDATE_IN_PROGRESS"):
        _ = target.outputs


def test_a_missing_stack_is_one_clear_error(stubs, target) -> None:
    stubs["cloudformation"].add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message=f"Stack with id {STACK} does not exist",
        expected_params={"StackName": STACK},
    )
    with pytest.raises(RuntimeError, match=f"cannot read stack {STACK}.*does not exist"):
        _ = target.outputs


# -- signing in ----------------------------------------------------------------------------------

PASSWORD = "Fixed-Drill-passw0rd!"


def signed_in(stubs: Stubs, *, exists: bool) -> None:
    user = {"UserPoolId": "us-east-1_pool", "Username": "drill"}
    cognito = stubs["cognito-idp"]
    if exists:
        cognito.add_client_error(
            "admin_create_user",
            service_error_code="UsernameExistsException",
            expected_params=user | {"MessageAction": "SUPPRESS"},
        )
    else:
        cognito.add_response(
            "admin_create_user",
            {"User": {"Username": "drill"}},
            user | {"MessageAction": "SUPPRESS"},
        )
    cognito.add_response(
        "admin_set_user_password", {}, user | {"Password": PASSWORD, "Permanent": True}
    )
    cognito.add_response(
        "initiate_auth",
        {
            "AuthenticationResult": {
                "IdToken": "the-id-token",
                "AccessToken": "the-access-token",
                "TokenType": "Bearer",
            }
        },
        {
            "ClientId": "client-1",
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "drill", "PASSWORD": PASSWORD},
        },
    )


@pytest.mark.parametrize("exists", [False, True], ids=["created", "already-there"])
def test_the_drill_user_signs_in_and_sends_its_id_token_to_cloudfront(
    stubs, target, monkeypatch, exists
) -> None:
    monkeypatch.setattr(aws_target, "_password", lambda: PASSWORD)
    stack_described(stubs)
    signed_in(stubs, exists=exists)
    # The Cognito authorizer takes the bare ID token: not the access token, no "Bearer".
    assert target.api() == Api("https://d111.cloudfront.net/", "the-id-token")
    assert target.api() is target.api()  # signed in once per drill (a second time is unstubbed)


def test_a_challenge_instead_of_tokens_is_an_error(stubs, target, monkeypatch) -> None:
    monkeypatch.setattr(aws_target, "_password", lambda: PASSWORD)
    stack_described(stubs)
    stubs["cognito-idp"].add_response("admin_create_user", {}, None)
    stubs["cognito-idp"].add_response("admin_set_user_password", {}, None)
    stubs["cognito-idp"].add_response(
        "initiate_auth", {"ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": "s" * 20}, None
    )
    with pytest.raises(RuntimeError, match="NEW_PASSWORD_REQUIRED"):
        target.api()


def test_generated_passwords_meet_the_pool_policy() -> None:
    passwords = {aws_target._password() for _ in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        assert len(password) >= 12
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password) and any(not c.isalnum() for c in password)


# -- the failover and its events -----------------------------------------------------------------

OLD_DONE = rds_event("Completed failover to DB instance: writer-a", T0 - 60)
STARTED = rds_event("Started cross AZ failover to DB instance: reader-b", T0 + 1)
DONE = rds_event("Completed failover to DB instance: reader-b", T0 + 31.5)


# -- the fault: a FIS experiment ------------------------------------------------------------------

PREFIX = "drill-abc123"
ALARMS = {
    name: f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
    for name in ("NearZeroRpo-DlqNotEmpty", "NearZeroRpo-Oldest")
}
REPORT_ARN = "arn:aws:s3:::nearzerorpo-fis/reports/writer-failover/EXP1/report.pdf"


def experiment(
    status: str,
    *,
    action: str = "pending",
    reason: str = "",
    end: float | None = None,
    report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """GetExperiment's experiment, as FIS documents it (botocore checks the shape)."""
    found: dict[str, Any] = {
        "id": "EXP1",
        "experimentTemplateId": "EXTfailover",
        "state": {"status": status, "reason": reason},
        "actions": {
            "Fault": {"actionId": "aws:rds:failover-db-cluster", "state": {"status": action}}
        },
        "stopConditions": [
            {"source": "aws:cloudwatch:alarm", "value": arn} for arn in ALARMS.values()
        ],
        "startTime": at(T0 + 0.5),
        "experimentReportConfiguration": {
            "outputs": {
                "s3Configuration": {
                    "bucketName": "nearzerorpo-fis",
                    "prefix": "reports/writer-failover",
                }
            }
        },
    }
    if end is not None:
        found["endTime"] = at(end)
    if report is not None:
        found["experimentReport"] = report
    return found


def started(stubs: Stubs, template: str = "EXTfailover") -> None:
    stubs["fis"].add_response(
        "start_experiment",
        {"experiment": experiment("initiating")},
        {"clientToken": PREFIX, "experimentTemplateId": template},
    )


def polled(stubs: Stubs, *answers: dict[str, Any]) -> None:
    for answer in answers:
        stubs["fis"].add_response("get_experiment", {"experiment": answer}, {"id": "EXP1"})


def alarms_described(stubs: Stubs, firing: str) -> None:
    stubs["cloudwatch"].add_response(
        "describe_alarms",
        {
            "MetricAlarms": [
                {"AlarmName": name, "StateValue": "ALARM" if name == firing else "OK"}
                for name in ALARMS
            ]
        },
        {"AlarmNames": list(ALARMS)},
    )


OLD_DONE = rds_event("Completed failover to DB instance: writer-a", T0 - 60)
STARTED = rds_event("Started cross AZ failover to DB instance: reader-b", T0 + 1)
DONE = rds_event("Completed failover to DB instance: reader-b", T0 + 31.5)


def failed_over(stubs: Stubs, target: AwsTarget, fault: str = "crash") -> list[float]:
    """A failover drill's fault, as AWS answers it: returns when the traffic was let go."""
    stack_described(stubs)
    since = T0 - aws_target.LOOKBACK_SECONDS
    events_described(stubs, since, OLD_DONE)  # what was there before: never this failover's
    started(stubs)
    polled(stubs, experiment("running", action="running"))
    events_described(stubs, since, OLD_DONE, STARTED)
    polled(stubs, experiment("completed", action="completed", end=T0 + 3))
    events_described(stubs, since, OLD_DONE, STARTED, DONE)
    begun: list[float] = []
    assert target.inject(fault, None, PREFIX, begun=lambda: begun.append(target._now())) == (
        T0,
        T0 + 31.5,
    )
    return begun


@pytest.mark.parametrize("fault", ["crash", "switchover"])
def test_a_failover_is_the_fis_template_then_awaited_until_rds_event_0071(
    stubs, target, clock, fault
) -> None:
    assert failed_over(stubs, target, fault) == [T0]  # the rest of the traffic goes at once
    assert clock.slept == [target.poll_seconds]  # polled twice, slept once between


def test_the_report_says_which_fault_and_where_fis_wrote_its_report(stubs, target) -> None:
    failed_over(stubs, target)
    written = {
        "state": {"status": "completed"},
        "s3Reports": [{"arn": REPORT_ARN, "reportType": "PDF"}],
    }
    polled(stubs, experiment("completed", action="completed", end=T0 + 3, report=written))
    notes = target.notes
    assert notes[: len(aws_target.NOTES)] == aws_target.NOTES
    assert any("aws:rds:failover-db-cluster" in note for note in notes)
    assert notes[-1] == f"FIS experiment EXP1's report: {REPORT_ARN}"
    assert target.notes == notes  # looked up once


def test_a_report_not_written_yet_says_where_it_will_be(stubs, target) -> None:
    failed_over(stubs, target)
    polled(stubs, experiment("completed", end=T0 + 3, report={"state": {"status": "pending"}}))
    assert target.notes[-1].startswith(
        "FIS experiment EXP1's report (pending) goes to s3://nearzerorpo-fis/reports/writer-failover"
    )
    assert "aws fis get-experiment --id EXP1" in target.notes[-1]


def test_a_failed_failover_stops_the_experiment_and_the_drill(stubs, target) -> None:
    stack_described(stubs)
    since = T0 - aws_target.LOOKBACK_SECONDS
    events_described(stubs, since)
    started(stubs)
    polled(stubs, experiment("running", action="running"))
    failed = rds_event(
        "Cluster failover failed, check the health of your cluster instances", T0 + 5
    )
    events_described(stubs, since, STARTED, failed)
    stubs["fis"].add_response("stop_experiment", {}, {"id": "EXP1"})
    with pytest.raises(RuntimeError, match="failover of nearzerorpo-cluster failed"):
        target.inject("crash", None, PREFIX)


def test_a_failed_experiment_stops_the_drill_with_fis_reason(stubs, target) -> None:
    stack_described(stubs)
    events_described(stubs, T0 - aws_target.LOOKBACK_SECONDS)
    started(stubs)
    polled(
        stubs,
        experiment("failed", reason="Role is not authorized to perform rds:FailoverDBCluster"),
    )
    with pytest.raises(RuntimeError, match="FIS experiment EXP1 failed: Role is not authorized"):
        target.inject("crash", None, PREFIX)


def test_a_failover_that_never_completes_times_out_and_stops_the_experiment(
    stubs, target, clock, monkeypatch
) -> None:
    monkeypatch.setattr(aws_target, "EXPERIMENT_TIMEOUT_SECONDS", 3.0)
    stack_described(stubs)
    since = T0 - aws_target.LOOKBACK_SECONDS
    events_described(stubs, since)
    started(stubs)
    for _ in range(3):  # at T0, T0 + 2, then T0 + 4 is past the deadline
        polled(stubs, experiment("running", action="running"))
        events_described(stubs, since, STARTED)
    stubs["fis"].add_response("stop_experiment", {}, {"id": "EXP1"})
    with pytest.raises(TimeoutError, match=r"no RDS-EVENT-0071 .* FIS experiment EXP1"):
        target.inject("crash", None, PREFIX)
    assert clock.slept == [2.0, 2.0]


def test_ctrl_c_during_the_experiment_stops_it(stubs, clock) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    target = AwsTarget(STACK, clients=stubs.client, now=clock.time, sleep=interrupted)
    stack_described(stubs)
    started(stubs, "EXTconsumer")
    polled(stubs, experiment("running", action="running"))
    stubs["fis"].add_response("stop_experiment", {}, {"id": "EXP1"})
    with pytest.raises(KeyboardInterrupt):
        target.inject("consumer-crash", None, PREFIX)


def test_the_consumer_fault_holds_the_traffic_until_it_has_reached_every_invocation(
    stubs, target, clock
) -> None:
    stack_described(stubs)
    started(stubs, "EXTconsumer")
    polled(stubs, experiment("initiating"))  # T0
    polled(stubs, experiment("running", action="pending"))  # T0 + 2: no fault configuration yet
    ramp = int(aws_target.RAMP_UP_SECONDS / target.poll_seconds)
    polled(stubs, *[experiment("running", action="running")] * (ramp + 1))  # T0 + 4 ... + 64
    polled(stubs, experiment("completed", action="completed", end=T0 + 190))
    begun: list[float] = []
    assert target.inject("consumer-crash", None, PREFIX, begun=lambda: begun.append(clock.now)) == (
        T0,
        T0 + 190,
    )
    action_running_since = T0 + 2 * target.poll_seconds  # counted from the action, not the start
    assert begun and begun[0] == action_running_since + aws_target.RAMP_UP_SECONDS
    assert any("aws:lambda:invocation-error" in note for note in target._fault_notes)


def consumer_faulted(stubs: Stubs, target: AwsTarget) -> None:
    """A consumer-crash drill's fault from start to end: T0 + 0.5 to T0 + 190 (AWS's clock)."""
    stack_described(stubs)
    started(stubs, "EXTconsumer")
    polled(stubs, experiment("running", action="running"))
    polled(stubs, experiment("completed", action="completed", end=T0 + 190))
    assert target.inject("consumer-crash", None, PREFIX) == (T0, T0 + 190)


def consumer_metrics(stubs: Stubs, until: int = 17, **sums: list[float]) -> None:
    """GetMetricData's answer for the consumer's Errors and Invocations over the experiment's
    whole minutes: T0 + 0.5 is 22:13:20.5 UTC, T0 + 190 is 22:16:30 (``until`` 22:17)."""
    queries = [
        {
            "Id": key,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": "NearZeroRpo-Consumer"}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }
        for key, metric in (("errors", "Errors"), ("invocations", "Invocations"))
    ]
    minutes = [datetime(2023, 11, 14, 22, m, tzinfo=UTC) for m in (13, 14, 15, 16)]
    stubs["cloudwatch"].add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {
                    "Id": key,
                    "Timestamps": minutes[: len(values)],
                    "Values": values,
                    "StatusCode": "Complete",
                }
                for key, values in sums.items()
            ]
        },
        {
            "MetricDataQueries": queries,
            "StartTime": datetime(2023, 11, 14, 22, 13, tzinfo=UTC),
            "EndTime": datetime(2023, 11, 14, 22, until, tzinfo=UTC),
        },
    )


def test_a_consumer_fault_that_failed_invocations_is_reported_as_landed(stubs, target) -> None:
    consumer_faulted(stubs, target)
    consumer_metrics(stubs, errors=[0.0, 12.0, 30.0, 9.0], invocations=[20.0, 12.0, 30.0, 15.0])
    polled(stubs, experiment("completed", end=T0 + 190, report={"state": {"status": "pending"}}))
    notes = target.notes
    assert notes[0] == (
        "the consumer fault landed: 51 of the consumer's 77 invocations failed between 22:13:20 "
        "and 22:16:30 UTC (CloudWatch AWS/Lambda Errors and Invocations, Sum, FunctionName "
        "NearZeroRpo-Consumer)"
    )
    assert notes[1 : 1 + len(aws_target.NOTES)] == aws_target.NOTES
    assert not any("NO FAULT" in note for note in notes)
    assert target.notes == notes  # CloudWatch read once (a second read is unstubbed)


def test_a_consumer_fault_that_failed_no_invocation_says_no_fault_landed(stubs, target) -> None:
    consumer_faulted(stubs, target)
    consumer_metrics(stubs, errors=[0.0, 0.0, 0.0, 0.0], invocations=[20.0, 12.0, 30.0, 15.0])
    polled(stubs, experiment("completed", end=T0 + 190, report={"state": {"status": "pending"}}))
    first = target.notes[0]
    assert first.startswith(
        "NO FAULT LANDED: none of the consumer's 77 invocations failed between 22:13:20 and "
        "22:16:30 UTC"
    )
    assert "this drill is one without a consumer crash" in first
    assert not any("fault landed:" in note for note in target.notes)


def test_a_consumer_fault_with_no_metrics_yet_is_not_taken_as_landed(stubs, target) -> None:
    """Lambda publishes nothing for minutes without invocations, and publishes late."""
    consumer_faulted(stubs, target)
    consumer_metrics(stubs, errors=[], invocations=[])
    polled(stubs, experiment("completed", end=T0 + 190, report={"state": {"status": "pending"}}))
    first = target.notes[0]
    assert first.startswith("NO FAULT SEEN TO LAND: CloudWatch had no consumer invocation")
    assert "Lambda's metrics had not arrived yet" in first


def test_a_failed_metrics_read_is_said_not_raised(stubs, target) -> None:
    consumer_faulted(stubs, target)
    stubs["cloudwatch"].add_client_error(
        "get_metric_data", service_error_code="AccessDenied", service_message="not allowed"
    )
    polled(stubs, experiment("completed", end=T0 + 190, report={"state": {"status": "pending"}}))
    first = target.notes[0]
    assert first.startswith("NO FAULT SEEN TO LAND: whether any consumer invocation failed")
    assert "AccessDenied" in first


def test_a_failover_drill_reads_no_consumer_metrics(stubs, target) -> None:
    failed_over(stubs, target)
    polled(stubs, experiment("completed", end=T0 + 3, report={"state": {"status": "pending"}}))
    assert target.notes[: len(aws_target.NOTES)] == aws_target.NOTES  # no get_metric_data queued


def test_a_stop_condition_ends_the_fault_and_the_report_names_its_alarm(stubs, target) -> None:
    stack_described(stubs)
    started(stubs, "EXTconsumer")
    polled(stubs, experiment("running", action="running"))
    reason = "Experiment stopped by stop condition"
    polled(stubs, experiment("stopped", action="stopped", reason=reason, end=T0 + 9))
    alarms_described(stubs, firing="NearZeroRpo-DlqNotEmpty")
    assert target.inject("consumer-crash", None, PREFIX) == (T0, T0 + 9)  # the drill goes on
    consumer_metrics(stubs, until=14, errors=[3.0], invocations=[3.0])
    polled(stubs, experiment("stopped", end=T0 + 9, report={"state": {"status": "running"}}))
    assert (
        "FIS experiment EXP1 was stopped (stop condition in ALARM: NearZeroRpo-DlqNotEmpty; "
        f"FIS: {reason})"
    ) in target.notes


def test_a_stop_before_the_failover_was_requested_is_no_failover(stubs, target) -> None:
    stack_described(stubs)
    since = T0 - aws_target.LOOKBACK_SECONDS
    events_described(stubs, since, OLD_DONE)
    started(stubs)
    polled(stubs, experiment("stopped", action="cancelled", reason="stop condition", end=T0 + 1.5))
    alarms_described(stubs, firing="NearZeroRpo-Oldest")
    events_described(stubs, since, OLD_DONE)
    assert target.inject("crash", None, PREFIX) == (T0, T0 + 1.5)
    assert "the experiment stopped before the failover" in target._fault_notes


def test_the_report_shows_the_experiment_beside_the_cluster_events(stubs, target) -> None:
    failed_over(stubs, target)
    events_described(stubs, T0, STARTED, DONE)
    assert [(e["event"], e["code"]) for e in target.events(T0)] == [
        ("experiment-started", "FIS"),
        ("failover-started", "RDS-EVENT-0073"),
        ("experiment-completed", "FIS"),
        ("failover-completed", "RDS-EVENT-0071"),
    ]


def test_every_fault_is_an_experiment_or_refused_with_a_reason() -> None:
    assert set(aws_target.SUPPORTED) | set(aws_target.UNSUPPORTED) == set(FAULTS)
    assert not set(aws_target.SUPPORTED) & set(aws_target.UNSUPPORTED)
    assert set(aws_target.EXPERIMENTS.values()) == set(aws_target.FAULT_NOTES)


def test_cluster_events_carry_their_rds_event_ids(stubs, target) -> None:
    stack_described(stubs)
    other = rds_event("DB cluster parameter group changed", T0 + 40)
    events_described(stubs, T0, STARTED, DONE, other)
    assert [(e["event"], e["code"]) for e in target.events(T0)] == [
        ("failover-started", "RDS-EVENT-0073"),
        ("failover-completed", "RDS-EVENT-0071"),
        ("rds", ""),
    ]


# -- reconciling, depths, the DLQ ----------------------------------------------------------------


def reconciled(stubs: Stubs, body: dict[str, Any]) -> None:
    stubs["lambda"].add_response(
        "invoke",
        {"StatusCode": 200, "Payload": payload(body)},
        {"FunctionName": "NearZeroRpo-Reconcile", "Payload": b'{"prefix": "drill-abc"}'},
    )


def test_reconcile_invokes_the_function_and_reads_each_orders_times(stubs, target) -> None:
    stack_described(stubs)
    reconciled(
        stubs,
        {
            "prefix": "drill-abc",
            "count": 2,
            "by_node": {"writer-a": 1, "reader-b": 1},
            "orders": [
                ["drill-abc-queue-000000", T0 + 0.5, T0 + 0.75],
                ["drill-abc-direct-000000", T0 + 1, T0 + 31.5],
            ],
        },
    )
    rows = target.committed("drill-abc")
    assert rows == {
        "drill-abc-queue-000000": Commit(accepted_at=T0 + 0.5, committed_at=T0 + 0.75),
        "drill-abc-direct-000000": Commit(accepted_at=T0 + 1, committed_at=T0 + 31.5),
    }
    # ... which the shared accounting turns into latency and RTO, as locally.
    ledger = [sent(order_id) for order_id in rows]
    assert drill.account("queue", ledger, rows, set(), 0, fault_at=T0).latency_ms["p50"] > 0
    assert drill._rto(rows, T0, T0 + 30) == 31.5


def test_a_reconcile_function_without_times_asks_for_a_redeploy(stubs, target) -> None:
    stack_described(stubs)
    reconciled(stubs, {"prefix": "drill-abc", "count": 0, "by_node": {}, "order_ids": []})
    with pytest.raises(RuntimeError, match="without commit times: deploy"):
        target.committed("drill-abc")


def test_a_reconcile_error_is_raised_with_its_message(stubs, target) -> None:
    stack_described(stubs)
    stubs["lambda"].add_response(
        "invoke",
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": payload(
                {"errorMessage": "connection timeout", "errorType": "OperationalError"}
            ),
        },
        {"FunctionName": "NearZeroRpo-Reconcile", "Payload": b'{"prefix": "drill-x"}'},
    )
    with pytest.raises(RuntimeError, match="reconcile function failed: connection timeout"):
        target.committed("drill-x")


def depths_answered(stubs: Stubs, queue: tuple[int, int], dlq: tuple[int, int]) -> None:
    """GetQueueAttributes for the queue, then the DLQ: (visible, in flight) each."""
    for url, (visible, in_flight) in ((OUTPUTS["QueueUrl"], queue), (OUTPUTS["DlqUrl"], dlq)):
        stubs["sqs"].add_response(
            "get_queue_attributes",
            {
                "Attributes": {
                    "ApproximateNumberOfMessages": str(visible),
                    "ApproximateNumberOfMessagesNotVisible": str(in_flight),
                }
            },
            {"QueueUrl": url, "AttributeNames": DEPTH_ATTRIBUTES},
        )


def dlq_peeked(stubs: Stubs, messages: list[dict[str, Any]]) -> None:
    """One receive that gets ``messages``, one that gets none, then each made visible again."""
    receive = {
        "QueueUrl": OUTPUTS["DlqUrl"],
        "MaxNumberOfMessages": 10,
        "VisibilityTimeout": 30,
        "WaitTimeSeconds": 1,  # every receive waits: short polls can miss messages on AWS
        "MessageSystemAttributeNames": ["All"],
    }
    stubs["sqs"].add_response("receive_message", {"Messages": messages}, receive)
    stubs["sqs"].add_response("receive_message", {}, receive)
    stubs["sqs"].add_response(
        "change_message_visibility_batch",
        {"Successful": [{"Id": str(i)} for i in range(len(messages))], "Failed": []},
        {
            "QueueUrl": OUTPUTS["DlqUrl"],
            "Entries": [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)
            ],
        },
    )


def test_queue_and_dlq_depths_count_visible_and_in_flight(stubs, target) -> None:
    stack_described(stubs)
    depths_answered(stubs, queue=(3, 2), dlq=(1, 0))
    assert (target.depth(), target.dlq_depth()) == (5, 1)


def test_the_dlq_is_peeked_and_every_message_made_visible_again(stubs, target) -> None:
    stack_described(stubs)
    dlq_peeked(
        stubs,
        [
            {
                "MessageId": f"m{i}",
                "ReceiptHandle": f"r{i}",
                "Body": json.dumps({"order_id": f"o-{i}"}),
            }
            for i in (1, 2)
        ],
    )
    assert target.parked() == {"o-1", "o-2"}


def test_redrive_is_sqs_move_task_from_the_dlq_to_the_queue(stubs, target, clock) -> None:
    stack_described(stubs)
    stubs["sqs"].add_response(
        "start_message_move_task",
        {"TaskHandle": "task-1"},
        {"SourceArn": OUTPUTS["DlqArn"], "DestinationArn": OUTPUTS["QueueArn"]},
    )
    listed = {"SourceArn": OUTPUTS["DlqArn"], "MaxResults": 1}
    stubs["sqs"].add_response(
        "list_message_move_tasks", {"Results": [{"Status": "RUNNING"}]}, listed
    )
    stubs["sqs"].add_response(
        "list_message_move_tasks",
        {"Results": [{"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 7}]},
        listed,
    )
    assert target.redrive() == 7
    assert clock.slept == [target.poll_seconds]


# -- faults AWS cannot inject --------------------------------------------------------------------


@pytest.mark.parametrize("fault", sorted(aws_target.UNSUPPORTED))
def test_faults_without_an_aws_api_are_refused_before_any_call(stubs, target, fault) -> None:
    # No response is queued: a single AWS call would fail with Stubber's UnStubbedResponseError.
    with pytest.raises(ValueError, match=f"^--fault {fault} is not possible on AWS: "):
        drill.run_on(target, fault, "queue", count=10, rate=10)


def test_an_outage_length_is_refused_before_any_call(stubs, target) -> None:
    with pytest.raises(ValueError, match="--outage is not possible on AWS"):
        drill.run_on(target, "crash", "queue", count=10, rate=10, outage=30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "aws", "--stack", STACK, "--fault", "hang"], "--fault hang is not possible"),
        (["--target", "aws", "--fault", "crash"], "--target aws needs --stack NAME"),
        (["--stack", STACK], "--stack and --region are for --target aws"),
    ],
)
def test_the_cli_refuses_in_one_line(monkeypatch, capsys, args, message) -> None:
    monkeypatch.setattr(sys, "argv", ["sandbox", "drill", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2  # usage errors, as click's own
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


# -- the shared accounting, given what the AWS target can see ------------------------------------


def sent(order_id: str, status: int = 202, at: float = T0) -> Sent:
    return Sent(order_id, status, at, at + 0.05)


def test_ids_without_timestamps_still_balance_but_give_no_latency_or_rto() -> None:
    ledger = [sent("o-1"), sent("o-2"), sent("o-3"), sent("o-4", status=503)]
    rows = {"o-1": Commit(), "o-4": Commit()}
    report = drill.account("queue", ledger, rows, {"o-2"}, 1, fault_at=T0)
    assert (report.committed_once, report.in_dlq, report.queued, report.lost) == (1, 1, 1, 0)
    assert report.errored_but_committed == 1
    assert report.balanced
    assert report.latency_ms == {}
    assert drill._rto(rows, T0, T0 + 30) is None


def test_with_timestamps_rto_is_the_first_commit_after_recovery() -> None:
    rows = {
        "before": Commit(accepted_at=T0 - 1, committed_at=T0 - 0.9),
        "after": Commit(accepted_at=T0 + 1, committed_at=T0 + 12.5),
        "later": Commit(accepted_at=T0 + 2, committed_at=T0 + 14),
    }
    assert drill._rto(rows, T0, T0 + 10) == 12.5
    report = drill.account("direct", [sent(k) for k in rows], rows, set(), 0, fault_at=T0)
    assert report.latency_ms["p50"] == 11500.0  # the median: "after", accepted -> committed


# -- one whole drill on a target that sees what AWS's does ---------------------------------------


class Gateway(BaseHTTPRequestHandler):
    """Commits every order it accepts at once, and insists on the token it was given."""

    committed: set[str]
    authorization: str

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers["Authorization"] != self.authorization:
            self.send_response(401)
        else:
            self.committed.add(body["order_id"])
            self.send_response(202 if self.path == "/orders" else 201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class IdsOnlyTarget:
    """In memory, with AWS's limits: no direct path, commit ids without timestamps, notes."""

    name = "ids-only"
    paths = ("queue",)
    poll_seconds = 0.01
    quiet_seconds = 0.0
    notes = ("no commit times",)
    replication = "aurora"

    def __init__(self, base_url: str, committed: set[str]) -> None:
        self.base_url = base_url
        self.committed_ids = committed
        self.injected: list[str] = []

    def check(self, fault: str, outage: float | None) -> None:
        pass

    def api(self) -> Api:
        return Api(self.base_url, "the-id-token")

    def inject(self, fault: str, outage: float | None, prefix: str = "", begun=None) -> Any:
        self.injected.append(fault)
        return T0, T0 + 1

    def depth(self) -> int:
        return 0

    def dlq_depth(self) -> int:
        return 0

    def committed(self, prefix: str) -> dict[str, Commit]:
        return {i: Commit() for i in list(self.committed_ids) if i.startswith(prefix)}

    def parked(self) -> set[str]:
        return set()

    def redrive(self) -> int:
        raise AssertionError("nothing was in the DLQ")

    def events(self, since: float) -> list[dict[str, Any]]:
        return []


def test_a_whole_drill_on_an_ids_only_target_accounts_for_every_order() -> None:
    committed: set[str] = set()
    handler = type("Handler", (Gateway,), {"committed": committed, "authorization": "the-id-token"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = IdsOnlyTarget(f"http://127.0.0.1:{server.server_port}", committed)
        steps: list[str] = []
        records: list[dict[str, Any]] = []
        report = drill.run_on(
            target,
            "crash",
            "both",
            count=30,
            rate=300,
            progress=lambda step, info: steps.append(step),
            record=records.append,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert target.injected == ["crash"]
    (queue,) = report.paths  # "both" is every path the target has
    assert (queue.sent, queue.accepted, queue.committed_once, queue.lost) == (30, 30, 30, 0)
    assert queue.balanced and queue.latency_ms == {}
    assert (report.fault_at, report.recovered_at, report.rto_seconds) == (T0, T0 + 1, None)
    assert (report.target, report.notes, report.replication) == (
        "ids-only",
        ["no commit times"],
        "aurora",
    )
    assert steps[0] == "paths" and steps.count("sent") == 30
    assert [r["status"] for r in records] == ["running", "done"]


def test_a_drill_that_dies_records_failed_not_running() -> None:
    """The dashboard's scoreboard reads the record: a crashed drill must not stay "running"."""
    committed: set[str] = set()
    handler = type("Handler", (Gateway,), {"committed": committed, "authorization": "the-id-token"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    class Broken(IdsOnlyTarget):
        def inject(self, fault: str, outage: float | None, prefix: str = "", begun=None) -> Any:
            raise RuntimeError("reader n2 is not streaming")

    records: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []  # what the sender heard back: a 202, or an error
    try:
        target = Broken(f"http://127.0.0.1:{server.server_port}", committed)
        with pytest.raises(RuntimeError, match="not streaming"):
            drill.run_on(
                target,
                "crash",
                "queue",
                count=300,
                rate=60,
                record=records.append,
                progress=lambda step, info: answers.append(info) if step == "sent" else None,
            )
    finally:
        server.shutdown()
        server.server_close()
    # The fault lands once a third has been answered (an answer may be a client timeout on a
    # busy machine, so counted by what the sender heard, not by commits); the senders were
    # stopped there and have ended (so nothing more can be sent), well before the schedule's end.
    senders = [t.name for t in threading.enumerate() if t.name.startswith("drill-sender-")]
    assert senders == []
    assert 100 <= len(answers) < 300
    assert len(committed) < 300
    assert [r["status"] for r in records] == ["running", "failed"]
    assert records[-1]["error"] == "reader n2 is not streaming"


def test_a_drill_that_never_settles_says_its_queued_count_is_not_by_id() -> None:
    """Two accepted orders never commit and the queue never empties: the bound ends the wait,
    the two are counted as still queued, and the report says that split is by depth, not id."""
    committed: set[str] = set()
    handler = type("Handler", (Gateway,), {"committed": committed, "authorization": "the-id-token"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    class Stuck(IdsOnlyTarget):
        def depth(self) -> int:
            return 2

        def committed(self, prefix: str) -> dict[str, Commit]:
            ids = sorted(i for i in self.committed_ids if i.startswith(prefix))
            return {i: Commit() for i in ids[:-2]}  # the last two never commit

    try:
        target = Stuck(f"http://127.0.0.1:{server.server_port}", committed)
        report = drill.run_on(target, "none", "queue", count=10, rate=300, settle_timeout=0.3)
    finally:
        server.shutdown()
        server.server_close()
    (queue,) = report.paths
    assert report.drain_seconds is None
    assert (queue.accepted, queue.committed_once, queue.queued, queue.lost) == (10, 8, 2, 0)
    assert any("had not settled" in note and "(2)" in note for note in report.notes)
    assert queue.balanced


def test_a_long_outage_without_the_queue_path_is_refused_before_anything_is_sent() -> None:
    """It lasts until the queue's retry budget is spent: with no queued order that never is."""

    class BothPaths(IdsOnlyTarget):
        paths = ("queue", "direct")

        def api(self) -> Api:
            raise AssertionError("nothing is sent")

    target = BothPaths("http://127.0.0.1:9", set())
    with pytest.raises(ValueError, match=r"long-outage .* needs the queue path"):
        drill.run_on(target, "long-outage", "direct", count=10, rate=10)
    assert target.injected == []


def test_held_traffic_waits_for_its_event_and_stops_on_cancel() -> None:
    """A drill's last two thirds wait until its fault has begun (`send_orders(hold=...)`)."""
    committed: set[str] = set()
    handler = type("Handler", (Gateway,), {"committed": committed, "authorization": "the-id-token"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = Api(f"http://127.0.0.1:{server.server_port}", "the-id-token")
    try:
        begun, cancel = threading.Event(), threading.Event()
        answered: list[str] = []

        def answer(sent: Any) -> None:
            answered.append(sent.order_id)
            if len(answered) == 3:  # the first three are in: the rest must be waiting
                cancel.set()

        held = send_orders(
            api, 9, 1000, prefix="h", hold=(3, begun), cancel=cancel, progress=answer
        )
        assert sorted(s.order_id for s in held) == ["h-000000", "h-000001", "h-000002"]
        begun.set()
        ledger = send_orders(api, 9, 1000, prefix="g", hold=(3, begun))
        assert sorted(s.order_id for s in ledger) == [f"g-{i:06d}" for i in range(9)]
    finally:
        server.shutdown()
        server.server_close()
