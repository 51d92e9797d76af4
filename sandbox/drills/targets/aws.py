"""A deployed stack (the CDK app in ``aws/``) as a drill target, driven through AWS's APIs only.

CloudFormation gives the stack's outputs; Cognito a drill user's ID token; CloudFront takes the
traffic; the fault is one of the stack's Fault Injection Service (FIS) experiment templates
(``aws/stacks/fis.py``), started, polled, stopped if the drill ends early, with its stop
conditions and its report; RDS reports the failover in its events; SQS gives depths, the DLQ and
its redrive; the reconcile function (invoked with IAM) reads what committed, and when. Nothing
here connects to the database: the cluster has no public endpoint, and should not get one for a
drill.

Never run against AWS: checked only with botocore's Stubber (``tests/unit/test_aws_drill.py``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sandbox.drills.targets import Commit
from sandbox.ops.load import Api
from sandbox.standins.sqs import Depth, depth, snapshot

# boto3, botocore and the DLQ's reader (psycopg) are imported where used, not here: the CLI reads
# this module's default region for its help, and `sandbox --help` must not load them (the CLI's
# start time).
if TYPE_CHECKING:
    from sandbox.drills.targets.outputs import StackOutputs
    from sandbox.ops.dlq import Parked

#: The stack is pinned to us-east-1 (``aws/settings.py``: CloudFront's web ACL must live there).
DEFAULT_REGION = "us-east-1"
DRILL_USER = "drill"
#: Each fault this target can inject, and the stack's FIS experiment template that does it (the
#: `StackOutputs` field holding its id). crash and switchover are both FIS's
#: aws:rds:failover-db-cluster (RDS FailoverDBCluster; Aurora has no crash API); consumer-crash is
#: aws:lambda:invocation-error after the invocation ran (FIS's Lambda actions, since 2024).
EXPERIMENTS = {
    "crash": "failover_template",
    "switchover": "failover_template",
    "consumer-crash": "consumer_fault_template",
}
SUPPORTED = ("none", *EXPERIMENTS)
#: Why each of the local sandbox's other faults has no AWS counterpart here.
UNSUPPORTED = {
    "hang": "no AWS API freezes an Aurora writer",
    "lock-stall": "the drill holds no session on the deployed database to take a lock in",
    "long-outage": "Aurora decides how long a failover takes",
    "proxy-restart": "RDS Proxy has no restart API",
    "lagging-crash": "Aurora's replicas share the writer's storage: none falls behind on commits",
    "writer-killed": "no AWS API kills an Aurora instance (--fault crash is FIS's failover)",
    "writer-frozen": "no AWS API freezes an Aurora writer",
    "reader-killed": "no AWS API kills an Aurora reader",
    "proxy-killed": "RDS Proxy's processes are AWS's to run",
    "consumer-killed": "Lambda's SQS pollers are AWS's to run (--fault consumer-crash fails the "
    "consumer's invocations with FIS)",
    "control-plane-killed": "Aurora's control plane is AWS's to run",
    "api-killed": "API Gateway's processes are AWS's to run",
    "localstack-killed": "LocalStack is the local stand-in for SQS, Secrets Manager and "
    "CloudWatch, which are AWS's to run",
    "dashboard-killed": "the dashboard runs on this machine, not in the stack",
    "keeper-killed": "the keeper restarts the local control plane, which Aurora's replaces",
    "writer-partitioned": "FIS cuts network by subnet (aws:network:disrupt-connectivity), which "
    "would cut the functions too: no template for it",
    "reader-partitioned": "FIS cuts network by subnet (aws:network:disrupt-connectivity), which "
    "would cut the functions too: no template for it",
}
#: FIS experiment states (GetExperiment): which end an experiment, and which of those are errors.
ENDED = ("completed", "stopped", "failed", "cancelled")
BROKEN = ("failed", "cancelled")
#: How long the consumer fault takes to reach every invocation after the experiment is running:
#: the FIS extension's poll interval while idle, set on the consumer
#: (``aws/stacks/fis.py``: SLOW_POLL_SECONDS, equal by test). The rest of the drill's traffic
#: waits this long, so it meets the fault.
RAMP_UP_SECONDS = 20.0
#: ``describe_events`` returns the message, not the event id; these are the documented messages
#: of the Aurora DB cluster failover events.
RDS_EVENTS = (
    ("Started cross AZ failover to DB instance", "failover-started", "RDS-EVENT-0073"),
    ("Started same AZ failover to DB instance", "failover-started", "RDS-EVENT-0072"),
    ("Completed failover to DB instance", "failover-completed", "RDS-EVENT-0071"),
    ("Cluster failover failed", "failover-failed", "RDS-EVENT-0069"),
)
COMPLETED, FAILED = "RDS-EVENT-0071", "RDS-EVENT-0069"
#: How far back event reads reach before the failover request, so a local clock ahead of AWS's
#: cannot hide the events; events already there before the request are excluded by identity.
LOOKBACK_SECONDS = 120.0
#: A bound on an experiment and the failover after it, not a wait: each ends at its event.
EXPERIMENT_TIMEOUT_SECONDS = 600.0
REDRIVE_TIMEOUT_SECONDS = 300.0
NOTES = (
    "latency and RTO are from the reconcile function's accepted_at and committed_at (the "
    "database's clock) and the fault's start (this machine's clock, at StartExperiment): a "
    "clock offset between the two moves them by as much",
    "duplicates and rows written count each id once: the table's primary key (and the "
    "reconcile function's ids) cannot hold a second row",
)
#: Said in the report for each fault: what it was, and where its times come from.
FAULT_NOTES = {
    "failover_template": (
        "crash and switchover are both FIS's aws:rds:failover-db-cluster, RDS "
        "FailoverDBCluster (Aurora has no crash API: aurora_inject_crash needs SQL on the writer "
        "and does not fail over; reboot with ForceFailover is for Multi-AZ instances)",
        "fault_at is the StartExperiment request (local clock); recovered_at is "
        "RDS-EVENT-0071's time (AWS's clock)",
    ),
    "consumer_fault_template": (
        "consumer-crash is FIS's aws:lambda:invocation-error: for the template's duration every "
        "consumer invocation fails after its batch ran, so the batch comes back after the "
        "visibility timeout though it committed",
        f"the drill's traffic after the first third waited {RAMP_UP_SECONDS:.0f} s after the "
        "experiment was running (the FIS extension's poll); recovered_at is the experiment's "
        "end (AWS's clock)",
    ),
}

Clients = Callable[[str], Any]


class AwsTarget:
    """One deployed stack. Building it calls nothing; the first API call is the outputs read."""

    poll_seconds = 2.0  # each settle poll is a Lambda invocation and an SQS read
    quiet_seconds = 10.0  # SQS's approximate counts and the event source's batching lag behind
    replication = "aurora"  # six copies across three AZs, a write acknowledged by four

    def __init__(
        self,
        stack: str,
        region: str = DEFAULT_REGION,
        *,
        clients: Clients | None = None,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stack = stack
        self.name = f"aws {stack} in {region}"
        self._now, self._sleep = now, sleep
        import boto3

        # Every client up front: a boto3 session must not create clients from two threads, and
        # the depth sampler runs in its own.
        client = clients or boto3.Session(region_name=region).client
        self._cloudformation = client("cloudformation")
        self._cognito = client("cognito-idp")
        self._rds = client("rds")
        self._sqs = client("sqs")
        self._lambda = client("lambda")
        self._fis = client("fis")
        self._cloudwatch = client("cloudwatch")
        self._outputs: StackOutputs | None = None
        self._api: Api | None = None
        self._experiment: dict[str, Any] | None = None  # the drill's, as GetExperiment last said
        self._fault_notes: list[str] = []
        self._stop_note: str | None = None  # why the experiment was stopped, if it was
        self._report_note: str | None = None

    @property
    def outputs(self) -> StackOutputs:
        """Read once: a drill must not see a stack change under it."""
        from sandbox.drills.targets.outputs import read_outputs

        if self._outputs is None:
            self._outputs = read_outputs(self._cloudformation, self.stack)
        return self._outputs

    @property
    def paths(self) -> tuple[str, ...]:
        return ("queue", "direct") if self.outputs.direct_path else ("queue",)

    def check(self, fault: str, outage: float | None) -> None:
        if fault in UNSUPPORTED:
            raise ValueError(
                f"--fault {fault} is not possible on AWS: {UNSUPPORTED[fault]} "
                f"(use {', '.join(SUPPORTED)})"
            )
        if outage is not None:
            raise ValueError(
                "--outage is not possible on AWS: Aurora decides how long a failover takes, and "
                "the FIS template how long the consumer fault lasts"
            )

    def api(self) -> Api:
        """CloudFront, with the drill user's ID token (what the Cognito authorizer validates)."""
        if self._api is None:
            outputs = self.outputs
            token = sign_in(self._cognito, outputs.user_pool_id, outputs.user_pool_client_id)
            self._api = Api(self.outputs.cloudfront_url, token)
        return self._api

    @property
    def notes(self) -> tuple[str, ...]:
        """Every report's caveats, then the experiment's: which it was, how it ended, whether a
        stop condition fired, and where its report is (read when the report is built: FIS
        writes it after the experiment's post-experiment window)."""
        if self._experiment is None:
            return NOTES
        if self._report_note is None:
            self._report_note = self._report_location()
        stopped = () if self._stop_note is None else (self._stop_note,)
        return (*NOTES, *self._fault_notes, *stopped, self._report_note)

    def inject(
        self,
        fault: str,
        outage: float | None,
        prefix: str = "",
        begun: Callable[[], None] = lambda: None,
    ) -> tuple[float, float]:
        """Start the fault's FIS experiment, poll it until it ends (and, for a failover, until
        RDS-EVENT-0071); returns when the experiment was requested and when the stack recovered.

        The experiment is stopped if the drill ends while it runs (an error, a timeout, Ctrl-C).
        A stop condition that fires ends the fault early: the drill goes on, and its report says
        which alarm fired."""
        template = EXPERIMENTS[fault]
        self._fault_notes = list(FAULT_NOTES[template])
        if template == "failover_template":
            return self._failover(prefix, begun)
        return self._consumer_fault(prefix, begun)

    def _failover(self, prefix: str, begun: Callable[[], None]) -> tuple[float, float]:
        """Aurora promotes the reader (promotion tier 1, the other AZ); the cluster endpoint and
        the proxy follow it. Recovered is RDS-EVENT-0071; the drill waits for it and for the
        experiment's end, in whichever order they come (whether FIS's action waits for the
        failover to complete is not documented)."""
        cluster = self.outputs.cluster_id
        before = {_identity(e) for e in self._cluster_events(self._now() - LOOKBACK_SECONDS)}
        at, experiment_id = self._start(self.outputs.failover_template, prefix)
        begun()
        with self._stopped_unless_ended(experiment_id):
            while True:
                experiment = self._poll(experiment_id)
                completed = None
                for event in self._cluster_events(at - LOOKBACK_SECONDS):
                    if _identity(event) in before:
                        continue
                    if event["code"] == FAILED:
                        raise RuntimeError(f"the failover of {cluster} failed: {event['message']}")
                    if event["code"] == COMPLETED:
                        completed = event["epoch"]
                status = experiment["state"]["status"]
                if completed is not None and status in ENDED:
                    return at, completed
                if status == "stopped" and not _acted(experiment):
                    # A stop condition fired before the failover was requested: nothing failed.
                    self._fault_notes.append("the experiment stopped before the failover")
                    return at, _end(experiment, self._now())
                self._bounded(at, f"no {COMPLETED} for {cluster}")
                self._sleep(self.poll_seconds)

    def _consumer_fault(self, prefix: str, begun: Callable[[], None]) -> tuple[float, float]:
        """Every invocation fails for the template's duration. The rest of the traffic goes once
        the fault can have reached every invocation (`RAMP_UP_SECONDS` of running); recovered
        is the experiment's end."""
        at, experiment_id = self._start(self.outputs.consumer_fault_template, prefix)
        running_since: float | None = None
        with self._stopped_unless_ended(experiment_id):
            while True:
                experiment = self._poll(experiment_id)
                status = experiment["state"]["status"]
                if status in ENDED:
                    return at, _end(experiment, self._now())
                if status == "running" and running_since is None:
                    running_since = self._now()
                if running_since is not None and self._now() - running_since >= RAMP_UP_SECONDS:
                    begun()
                self._bounded(at, "the consumer fault did not end")
                self._sleep(self.poll_seconds)

    def _start(self, template_id: str, prefix: str) -> tuple[float, str]:
        """StartExperiment (its client token the drill's prefix: a retried request cannot start
        a second one); returns when it was requested and the experiment's id."""
        at = self._now()
        started = self._fis.start_experiment(
            clientToken=prefix or uuid.uuid4().hex, experimentTemplateId=template_id
        )
        self._experiment = started["experiment"]
        return at, self._experiment["id"]

    def _poll(self, experiment_id: str) -> dict[str, Any]:
        """GetExperiment; a failed or cancelled experiment stops the drill, a stopped one is
        noted with the stop conditions in alarm."""
        experiment = self._fis.get_experiment(id=experiment_id)["experiment"]
        self._experiment = experiment
        state = experiment["state"]
        if state["status"] in BROKEN:
            raise RuntimeError(
                f"FIS experiment {experiment_id} {state['status']}: {state.get('reason', '')}"
            )
        if state["status"] == "stopped" and self._stop_note is None:
            self._stop_note = self._stopped_because(experiment)
        return experiment

    def _stopped_because(self, experiment: dict[str, Any]) -> str:
        """Which stop conditions are in ALARM (DescribeAlarms), with FIS's reason."""
        names = [
            condition["value"].split(":alarm:", 1)[-1]
            for condition in experiment.get("stopConditions", [])
            if condition.get("source") == "aws:cloudwatch:alarm"
        ]
        alarms = self._cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"] if names else []
        firing = [a["AlarmName"] for a in alarms if a["StateValue"] == "ALARM"]
        reason = experiment["state"].get("reason", "")
        which = f"stop condition in ALARM: {', '.join(firing)}" if firing else "no stop condition"
        return f"FIS experiment {experiment['id']} was stopped ({which}; FIS: {reason})"

    @contextlib.contextmanager
    def _stopped_unless_ended(self, experiment_id: str) -> Iterator[None]:
        """StopExperiment if the drill leaves while the experiment runs; the drill's own error
        (or Ctrl-C) is what it reports, not a failure to stop."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except BaseException:
            if self._experiment and self._experiment["state"]["status"] not in ENDED:
                with contextlib.suppress(BotoCoreError, ClientError):
                    self._fis.stop_experiment(id=experiment_id)
            raise

    def _bounded(self, at: float, what: str) -> None:
        if self._now() > at + EXPERIMENT_TIMEOUT_SECONDS:
            assert self._experiment is not None
            raise TimeoutError(
                f"{what} within {EXPERIMENT_TIMEOUT_SECONDS:.0f} s of starting FIS experiment "
                f"{self._experiment['id']}: see it in the FIS console, and the cluster's events"
            )

    def _report_location(self) -> str:
        """Where the experiment's report is: its S3 object once FIS has written it, else where
        it will be (one GetExperiment; a failed read is said, not raised: the drill is done)."""
        from botocore.exceptions import BotoCoreError, ClientError

        assert self._experiment is not None
        experiment_id = self._experiment["id"]
        try:
            experiment = self._fis.get_experiment(id=experiment_id)["experiment"]
        except (BotoCoreError, ClientError) as error:
            return f"FIS experiment {experiment_id}'s report could not be looked up: {error}"
        report = experiment.get("experimentReport", {})
        written = [r["arn"] for r in report.get("s3Reports", []) if r.get("arn")]
        if written:
            return f"FIS experiment {experiment_id}'s report: {', '.join(written)}"
        s3 = experiment.get("experimentReportConfiguration", {}).get("outputs", {})
        where = s3.get("s3Configuration", {})
        status = report.get("state", {}).get("status", "not started")
        return (
            f"FIS experiment {experiment_id}'s report ({status}) goes to "
            f"s3://{where.get('bucketName', '?')}/{where.get('prefix', '')} once the "
            f"post-experiment window has passed: `aws fis get-experiment --id {experiment_id} "
            "--query experiment.experimentReport`"
        )

    def depth(self) -> int:
        return depth(self._sqs, self.outputs.queue_url).total

    def dlq_depth(self) -> int:
        return depth(self._sqs, self.outputs.dlq_url).total

    def depths(self) -> tuple[Depth, Depth]:
        """The queue's and the DLQ's, each split into visible and in flight (as SQS counts them:
        approximately, and one GetQueueAttributes call each)."""
        return depth(self._sqs, self.outputs.queue_url), depth(self._sqs, self.outputs.dlq_url)

    def committed(self, prefix: str) -> dict[str, Commit]:
        """The reconcile function's answer: ``{"prefix", "count", "by_node", "orders"}``, each
        order ``[order_id, accepted_at, committed_at]`` (``orders.order_id`` is the primary key,
        so each is one row)."""
        reply = self._lambda.invoke(
            FunctionName=self.outputs.reconcile_function,
            Payload=json.dumps({"prefix": prefix}).encode(),
        )
        body = json.loads(reply["Payload"].read())
        if "FunctionError" in reply:
            message = body.get("errorMessage", body) if isinstance(body, dict) else body
            raise RuntimeError(f"the reconcile function failed: {message}")
        if "orders" not in body:
            raise RuntimeError(
                "the reconcile function answers without commit times: deploy this project's aws/ "
                "app again"
            )
        return {
            order_id: Commit(accepted_at=accepted, committed_at=committed)
            for order_id, accepted, committed in body["orders"]
        }

    def parked(self) -> set[str]:
        """Every DLQ message's order id, each left in the DLQ (as `sandbox.ops.dlq.peek`)."""
        return {message.order_id for message in self.dlq_messages()}

    def dlq_messages(self) -> list[Parked]:
        """Every DLQ message as SQS gives it, each left in the DLQ (received, then made visible).

        ``receives`` is SQS's ApproximateReceiveCount, which counts this receive and every earlier
        peek too: there is no consumer log here to count deliveries from. SQS does not keep why a
        message failed, so ``last_error`` says where the consumer logged it.
        """
        from sandbox.ops.dlq import PEEK_LIMIT, from_sqs

        outputs = self.outputs
        messages = snapshot(self._sqs, outputs.dlq_url, limit=PEEK_LIMIT, poll_every=True)
        where = f'not kept by SQS: see "order failed" in the log of {outputs.consumer_function}'
        return [
            from_sqs(
                message,
                receives=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                last_error=where,
            )
            for message in messages
        ]

    def redrive(self) -> int:
        """SQS's own move task, which redrives FIFO queues on AWS; returns messages moved."""
        source = self.outputs.dlq_arn
        self._sqs.start_message_move_task(SourceArn=source, DestinationArn=self.outputs.queue_arn)
        deadline = self._now() + REDRIVE_TIMEOUT_SECONDS
        while self._now() < deadline:
            task = self._sqs.list_message_move_tasks(SourceArn=source, MaxResults=1)["Results"][0]
            if task["Status"] == "COMPLETED":
                return int(task.get("ApproximateNumberOfMessagesMoved", 0))
            if task["Status"] in ("FAILED", "CANCELLED"):
                raise RuntimeError(f"move task {task['Status']}: {task.get('FailureReason', '')}")
            self._sleep(self.poll_seconds)
        raise TimeoutError(f"DLQ redrive still running after {REDRIVE_TIMEOUT_SECONDS:.0f} s")

    def events(self, since: float) -> list[dict[str, Any]]:
        """The cluster's events and the drill's experiment's start and end, oldest first."""
        events = self._cluster_events(since) + _experiment_events(self._experiment)
        return sorted((e for e in events if e["epoch"] >= since), key=lambda e: e["epoch"])

    def _cluster_events(self, since: float) -> list[dict[str, Any]]:
        pages = self._rds.get_paginator("describe_events").paginate(
            SourceIdentifier=self.outputs.cluster_id,
            SourceType="db-cluster",
            StartTime=datetime.fromtimestamp(since, tz=UTC),
        )
        return [_event(raw) for page in pages for raw in page.get("Events", [])]


def sign_in(cognito: Any, pool_id: str, client_id: str) -> str:
    """The drill user's ID token, creating the user if it is missing.

    The password is new on every drill and set permanent (so no challenge follows); it is never
    stored, because nothing needs it after this sign-in. The pool is admin-only (no sign-up).
    """
    username, password = DRILL_USER, _password()
    # A drill user left by an earlier drill is reused; it gets a new password below.
    with contextlib.suppress(cognito.exceptions.UsernameExistsException):
        cognito.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    cognito.admin_set_user_password(
        UserPoolId=pool_id, Username=username, Password=password, Permanent=True
    )
    reply = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    if "AuthenticationResult" not in reply:
        raise RuntimeError(f"Cognito asked {username} for {reply.get('ChallengeName')}")
    return reply["AuthenticationResult"]["IdToken"]


def _password() -> str:
    """Random, plus one of each class the pool's policy requires (``aws/stacks/api.py``)."""
    return secrets.token_urlsafe(24) + "Aa1!"


def _event(raw: dict[str, Any]) -> dict[str, Any]:
    """An RDS event in the shape of `sandbox.standins.aurora.events`' records, with its RDS
    event id if known."""
    message = raw["Message"]
    kind, code = next(
        ((kind, code) for text, kind, code in RDS_EVENTS if message.startswith(text)), ("rds", "")
    )
    date: datetime = raw["Date"]
    return {
        "time": date.isoformat(timespec="milliseconds"),
        "epoch": date.timestamp(),
        "event": kind,
        "code": code,
        "message": message,
    }


def _identity(event: dict[str, Any]) -> tuple[float, str]:
    return event["epoch"], event["message"]


def _acted(experiment: dict[str, Any]) -> bool:
    """Whether any of the experiment's actions got as far as running."""
    return any(
        action.get("state", {}).get("status") in ("running", "completed", "stopping", "stopped")
        for action in experiment.get("actions", {}).values()
    )


def _end(experiment: dict[str, Any], fallback: float) -> float:
    """The experiment's end (AWS's clock), or ``fallback`` if FIS has not said yet."""
    end: datetime | None = experiment.get("endTime")
    return end.timestamp() if end else fallback


def _experiment_events(experiment: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The experiment's start and end as events in the report (code "FIS")."""
    if experiment is None:
        return []
    found = []
    name = f"FIS experiment {experiment['id']}"
    state = experiment["state"]
    for key, kind, message in (
        ("startTime", "experiment-started", f"{name} started"),
        (
            "endTime",
            f"experiment-{state['status']}",
            f"{name} {state['status']}: {state.get('reason', '')}".rstrip(": "),
        ),
    ):
        date: datetime | None = experiment.get(key)
        if date is not None:
            found.append(
                {
                    "time": date.isoformat(timespec="milliseconds"),
                    "epoch": date.timestamp(),
                    "event": kind,
                    "code": "FIS",
                    "message": message,
                }
            )
    return found
