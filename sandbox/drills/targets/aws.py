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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandbox.drills.targets import Commit
from sandbox.drills.targets.experiments import ENDED, Experiment
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
    "secret-rotated": "a rotation is Secrets Manager's, not an FIS action: rotate the functions' "
    "secret by hand (aws secretsmanager rotate-secret --secret-id <AppSecretArn>) during a "
    "--fault none drill",
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
#: How long the rest of the drill's traffic waits once FIS's consumer action is running (FIS has
#: then written the fault configuration): three of the extension's slow polls
#: (``aws/stacks/fis.py``: SLOW_POLL_SECONDS, 20 s; the rule is tested there). An execution
#: environment reads the configuration at its next poll, up to one interval later; a poll due
#: while the environment sat frozen between invocations runs only in its next invocation, and one
#: that outlasts the invocation's wait for it (POLL_MAX_WAIT_MILLISECONDS) finishes in a later
#: one: two more intervals of margin. 60 s is also the ramp-up AWS documents at its default
#: interval ("up to 60s": FIS user guide, "Use the AWS FIS aws:lambda:function actions",
#: "Understanding polling"). None of this is measured here: whether the fault landed is read
#: from CloudWatch after it (`AwsTarget.notes`).
RAMP_UP_SECONDS = 60.0
#: The consumer's metrics whose sums over the experiment say whether the fault landed.
LANDING_METRICS = {"errors": "Errors", "invocations": "Invocations"}
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
        f"the drill's traffic after the first third waited {RAMP_UP_SECONDS:.0f} s after FIS's "
        "action was running (three of the FIS extension's polls); recovered_at is the "
        "experiment's end (AWS's clock)",
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
        self._experiment: Experiment | None = None  # the drill's fault, once started
        self._fault_notes: list[str] = []
        # Whether the experiment's consumer fault landed, once read.
        self._landing: str | None = None

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
        """Every report's caveats, then the experiment's: which fault it was, whether a stop
        condition fired, and where its report is. A consumer fault's first note says whether it
        landed (`_landed`): FIS running is not a fault injected."""
        experiment = self._experiment
        if experiment is None:
            return NOTES
        landing: tuple[str, ...] = ()
        if experiment.template_id == self.outputs.consumer_fault_template:
            if self._landing is None:
                self._landing = self._landed(experiment)
            landing = (self._landing,)
        stopped = () if experiment.stop_note is None else (experiment.stop_note,)
        return (*landing, *NOTES, *self._fault_notes, *stopped, experiment.report())

    def _landed(self, experiment: Experiment) -> str:
        """Whether any consumer invocation failed while the experiment ran: the consumer's
        Errors and Invocations (AWS/Lambda, by FunctionName, Sum) over the experiment's minutes,
        from CloudWatch.

        Said in the report, not raised: the account of every order is as exact without the fault
        as with it, and raising would throw it away; and Lambda's metrics reach CloudWatch a
        minute or so late, so an empty read can be a fault that landed. The note says which it
        is, first among the notes, in capitals when no failure is seen."""
        from botocore.exceptions import BotoCoreError, ClientError

        name = self.outputs.consumer_function
        window = experiment.window()
        if window is None:
            return (
                "NO FAULT SEEN TO LAND: FIS gave no start and end for the experiment, so the "
                f"consumer's errors during it were not read ({name})"
            )
        start, end = window
        try:
            sums = self._metric_sums(name, start, end)
        except (BotoCoreError, ClientError) as error:
            return (
                "NO FAULT SEEN TO LAND: whether any consumer invocation failed during the "
                f"experiment is unknown: CloudWatch GetMetricData failed: {error}"
            )
        errors, invocations = sums["errors"], sums["invocations"]
        where = (
            f"between {start:%H:%M:%S} and {end:%H:%M:%S} UTC (CloudWatch AWS/Lambda Errors and "
            f"Invocations, Sum, FunctionName {name})"
        )
        if errors > 0:
            return (
                f"the consumer fault landed: {errors:.0f} of the consumer's {invocations:.0f} "
                f"invocations failed {where}"
            )
        if invocations > 0:
            return (
                f"NO FAULT LANDED: none of the consumer's {invocations:.0f} invocations failed "
                f"{where}: FIS ran, but this drill is one without a consumer crash, and its "
                "account, latency and RTO say nothing about one (the consumer's log shows what "
                "the FIS extension read: its lines start 'AWS FIS EXTENSION')"
            )
        return (
            f"NO FAULT SEEN TO LAND: CloudWatch had no consumer invocation {where} when the "
            f"drill read it at {datetime.fromtimestamp(self._now(), tz=UTC):%H:%M:%S} UTC: "
            "either no batch ran during the fault, or Lambda's metrics had not arrived yet; "
            "until Errors shows failures in that window this is not a consumer-crash drill"
        )

    def _metric_sums(self, function: str, start: datetime, end: datetime) -> dict[str, float]:
        """Each of `LANDING_METRICS` summed over the whole minutes from ``start`` to ``end``."""
        first = start.replace(second=0, microsecond=0)
        last = end.replace(second=0, microsecond=0)
        if last < end:
            last += timedelta(minutes=1)
        queries = [
            {
                "Id": key,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "FunctionName", "Value": function}],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for key, metric in LANDING_METRICS.items()
        ]
        sums = dict.fromkeys(LANDING_METRICS, 0.0)
        pages = self._cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=first, EndTime=last
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                sums[result["Id"]] += sum(result.get("Values", []))
        return sums

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
        template_id = getattr(self.outputs, template)
        experiment = Experiment(
            self._fis, self._cloudwatch, template_id, prefix or uuid.uuid4().hex
        )
        if template == "failover_template":
            return self._failover(experiment, begun)
        return self._consumer_fault(experiment, begun)

    def _start(self, experiment: Experiment) -> float:
        """StartExperiment; returns when it was requested (this machine's clock)."""
        at = self._now()
        experiment.start()
        self._experiment, self._landing = experiment, None
        return at

    def _failover(self, experiment: Experiment, begun: Callable[[], None]) -> tuple[float, float]:
        """Aurora promotes the reader (promotion tier 1, the other AZ); the cluster endpoint and
        the proxy follow it. Recovered is RDS-EVENT-0071; the drill waits for it and for the
        experiment's end, in whichever order they come (whether FIS's action waits for the
        failover to complete is not documented)."""
        cluster = self.outputs.cluster_id
        before = {_identity(e) for e in self._cluster_events(self._now() - LOOKBACK_SECONDS)}
        at = self._start(experiment)
        begun()
        with experiment.stopped_if_left():
            while True:
                status = experiment.poll()
                completed = None
                for event in self._cluster_events(at - LOOKBACK_SECONDS):
                    if _identity(event) in before:
                        continue
                    if event["code"] == FAILED:
                        raise RuntimeError(f"the failover of {cluster} failed: {event['message']}")
                    if event["code"] == COMPLETED:
                        completed = event["epoch"]
                if completed is not None and status in ENDED:
                    return at, completed
                if status == "stopped" and not experiment.acted():
                    # A stop condition fired before the failover was requested: nothing failed.
                    self._fault_notes.append("the experiment stopped before the failover")
                    return at, experiment.end(self._now())
                self._bounded(experiment, at, f"no {COMPLETED} for {cluster}")
                self._sleep(self.poll_seconds)

    def _consumer_fault(
        self, experiment: Experiment, begun: Callable[[], None]
    ) -> tuple[float, float]:
        """Every invocation fails for the template's duration. The rest of the traffic goes once
        the fault can have reached every invocation (`RAMP_UP_SECONDS` after FIS's action was
        seen running); recovered is the experiment's end. Whether it landed is read after it
        (`notes`)."""
        at = self._start(experiment)
        running_since: float | None = None
        with experiment.stopped_if_left():
            while True:
                status = experiment.poll()
                if status in ENDED:
                    return at, experiment.end(self._now())
                if status == "running" and experiment.acting() and running_since is None:
                    running_since = self._now()
                if running_since is not None and self._now() - running_since >= RAMP_UP_SECONDS:
                    begun()
                self._bounded(experiment, at, "the consumer fault did not end")
                self._sleep(self.poll_seconds)

    def _bounded(self, experiment: Experiment, at: float, what: str) -> None:
        if self._now() > at + EXPERIMENT_TIMEOUT_SECONDS:
            raise TimeoutError(
                f"{what} within {EXPERIMENT_TIMEOUT_SECONDS:.0f} s of starting FIS experiment "
                f"{experiment.id}: see it in the FIS console, and the cluster's events"
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
        experiment = [] if self._experiment is None else self._experiment.events()
        events = self._cluster_events(since) + experiment
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
