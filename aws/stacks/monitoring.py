"""What a drill watches and what pages a team: a dashboard of the queue, the functions, the proxy
and the cluster; alarms on one SNS topic; and every RDS failover event of this cluster, recorded
in a log group and sent to the same topic by an EventBridge rule.

The alarms: a message in the DLQ and a queue that stopped draining (the two signs of lost or stuck
orders), and the causes behind them: the consumer failing or throttled, the API answering 5XX, the
proxy slow to lend a connection, the reader lagging. A failover makes the consumer fail and the
proxy wait for a while by design, so those alarms need the trouble to outlast one (`SUSTAINED`).
"""

from __future__ import annotations

import math
import re
from typing import cast

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from aws.stacks.database import Database
from aws.stacks.functions import Functions
from aws.stacks.logs import log_group
from aws.stacks.proxy import Proxy
from aws.stacks.queue import Queues
from sandbox.spec.alarms import DLQ_NOT_EMPTY
from sandbox.spec.queue import QueueSettings
from sandbox.spec.timings import AURORA_FAILOVER_SECONDS, FAILOVER_MULTIPLE

PERIOD = Duration.minutes(1)
#: One-minute periods in a row before a cause alarm fires: longer than the failovers the retry
#: budget is sized for (2 x Aurora's documented 60 s), so a drill's failover alone does not page.
SUSTAINED = math.ceil(FAILOVER_MULTIPLE * AURORA_FAILOVER_SECONDS / PERIOD.to_seconds()) + 1
#: Aurora reports replica lag in milliseconds; in-region replicas share the storage and typically
#: lag well under 100 ms, so a second is a reader that would serve stale reads.
REPLICA_LAG_MS = 1000
FAILOVER_DETAIL_TYPES = ["RDS DB Cluster Event", "RDS DB Instance Event"]


def oldest_message_threshold_seconds(settings: QueueSettings) -> int:
    """A message that failed every receive reaches the DLQ after visibility x maxReceiveCount; an
    older message in the queue means the consumer is not draining it at all."""
    return settings.visibility_timeout_seconds * settings.max_receive_count


class Monitoring(Construct):
    """Alarm topic (encrypted with a key CloudWatch may use), alarms, dashboard, failover log."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queues: Queues,
        functions: Functions,
        api: apigw.RestApi,
        database: Database,
        proxy: Proxy,
        serverless: bool,
        alarm_email: str,
    ) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch cannot publish to a topic encrypted with the AWS-managed aws/sns key.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(self, "Alarms", master_key=key, enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

        queue, dlq = queues.queue, queues.dlq
        spec = DLQ_NOT_EMPTY  # the same alarm the local sandbox sets on LocalStack
        dlq_depth = dlq.metric(spec.metric_name, period=PERIOD, statistic=spec.statistic)
        oldest = queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum")
        self.dlq_alarm = cw.Alarm(
            self,
            "DlqNotEmpty",
            alarm_description=spec.description,
            metric=dlq_depth,
            threshold=spec.threshold,
            comparison_operator=cw.ComparisonOperator[_constant(spec.comparison)],
            evaluation_periods=spec.evaluation_periods,
            treat_missing_data=cw.TreatMissingData[_constant(spec.treat_missing_data)],
        )
        self.oldest_alarm = cw.Alarm(
            self,
            "OldestMessageTooOld",
            alarm_description="The queue is not draining: the consumer is failing or stopped.",
            metric=oldest,
            threshold=oldest_message_threshold_seconds(queues.settings),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.cause_alarms = self._cause_alarms(functions, api, database, proxy)
        self.alarms = [self.dlq_alarm, self.oldest_alarm, *self.cause_alarms]
        for alarm in self.alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            alarm.add_ok_action(cw_actions.SnsAction(self.topic))

        self.failover_log = log_group(
            self,
            "FailoverEvents",
            retention=logs.RetentionDays.THREE_MONTHS,
        )
        cluster = database.cluster
        self.failover_rule = events.Rule(
            self,
            "RdsFailovers",
            description="Records this cluster's failover events (start, end, new writer)",
            event_pattern=events.EventPattern(
                source=["aws.rds"],
                detail_type=FAILOVER_DETAIL_TYPES,
                detail={
                    "EventCategories": ["failover"],
                    "SourceIdentifier": [cluster.cluster_identifier, *cluster.instance_identifiers],
                },
            ),
        )
        self._record_to(self.failover_log)

        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(1))
        functions_shown = [functions.producer, functions.consumer]
        if functions.direct is not None:
            functions_shown.append(functions.direct)
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(alarms=self.alarms, width=24, height=3),
        )
        self.dashboard.add_widgets(
            _graph(
                "Queue depth",
                queue.metric_approximate_number_of_messages_visible(period=PERIOD, label="visible"),
                queue.metric_approximate_number_of_messages_not_visible(
                    period=PERIOD, label="in flight"
                ),
            ),
            _graph("Age of oldest message", oldest),
            _graph("DLQ depth", dlq_depth),
        )
        self.dashboard.add_widgets(
            _graph("Function errors", *(fn.metric_errors(period=PERIOD) for fn in functions_shown)),
            _graph(
                "Function throttles",
                *(fn.metric_throttles(period=PERIOD) for fn in functions_shown),
            ),
            _graph(
                "Proxy connections",
                _shown("ClientConnections", ProxyName=proxy.proxy.db_proxy_name),
                _shown("DatabaseConnections", ProxyName=proxy.proxy.db_proxy_name),
            ),
        )
        roles = ("WRITER", "READER")
        capacity = "ServerlessDatabaseCapacity" if serverless else "FreeableMemory"
        cluster_id = cluster.cluster_identifier
        self.dashboard.add_widgets(
            _graph(
                "Cluster connections",
                *(
                    _shown("DatabaseConnections", DBClusterIdentifier=cluster_id, Role=r)
                    for r in roles
                ),
            ),
            _graph(
                "CPU by role",
                *(_shown("CPUUtilization", DBClusterIdentifier=cluster_id, Role=r) for r in roles),
            ),
            # Serverless v2 scales in ACUs; a provisioned instance has a fixed size and memory.
            _graph(
                "Capacity (ACU) by role" if serverless else "Freeable memory by role",
                *(_shown(capacity, DBClusterIdentifier=cluster_id, Role=r) for r in roles),
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "Commit latency (writer)",
                _shown("CommitLatency", DBClusterIdentifier=cluster_id, Role="WRITER"),
            ),
            _graph(
                "Replica lag (reader, ms)",
                _shown("AuroraReplicaLag", DBClusterIdentifier=cluster_id, Role="READER"),
            ),
        )

    def _cause_alarms(
        self, functions: Functions, api: apigw.RestApi, database: Database, proxy: Proxy
    ) -> list[cw.Alarm]:
        """The causes a team looks at when orders stop: each a metric over `SUSTAINED` minutes."""
        consumer = functions.consumer
        proxy_name = proxy.proxy.db_proxy_name
        cluster_id = database.cluster.cluster_identifier
        alarms = [
            self._sustained(
                "ConsumerErrors",
                "The consumer function fails whole invocations (every record of a batch, or a "
                "timeout): the database or the proxy is unreachable for longer than a failover.",
                consumer.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
            ),
            self._sustained(
                "ApiServerErrors",
                "The API answers 5XX: the producer cannot reach SQS, or the direct path the "
                "database, for longer than a failover.",
                api.metric_server_error(period=PERIOD, statistic="Sum"),
                threshold=1,
            ),
            self._sustained(
                "ProxyBorrowSlow",
                "RDS Proxy takes over half its borrow timeout, on average, to lend a database "
                "connection: the writer is away or the pool is exhausted.",
                _rds("DatabaseConnectionsBorrowLatency", ProxyName=proxy_name, statistic="Average"),
                # Reported in microseconds.
                threshold=proxy.borrow_timeout_seconds * 1_000_000 / 2,
            ),
            self._sustained(
                "ReplicaLag",
                f"The reader lags the writer by over {REPLICA_LAG_MS} ms.",
                _rds("AuroraReplicaLag", DBClusterIdentifier=cluster_id, Role="READER"),
                threshold=REPLICA_LAG_MS,
            ),
        ]
        # The event source mapping never asks for more than its maximum concurrency, so any
        # throttle is the account's concurrency running out: worth knowing at once.
        alarms.append(
            cw.Alarm(
                self,
                "ConsumerThrottles",
                alarm_description="Lambda throttles the consumer: the account or region is out of "
                "concurrency, and orders wait in the queue.",
                metric=consumer.metric_throttles(period=PERIOD, statistic="Sum"),
                threshold=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
        )
        return alarms

    def _sustained(
        self, name: str, description: str, metric: cw.IMetric, *, threshold: float
    ) -> cw.Alarm:
        return cw.Alarm(
            self,
            name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=SUSTAINED,
            datapoints_to_alarm=SUSTAINED,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

    def _record_to(self, log_group: logs.LogGroup) -> None:
        """The failover rule's targets: the log group, with a resource policy letting EventBridge
        write to it, and the alarm topic, which lets EventBridge publish this rule's events (and
        its key, above, lets it encrypt them). `targets.CloudWatchLogGroup` would do the first
        through a custom resource (a Lambda function and a role with a wildcard policy); the
        native resource needs neither."""
        logs.ResourcePolicy(
            self,
            "EventBridgeMayWrite",
            policy_statements=[
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
            ],
        )
        arn = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=log_group.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.failover_rule.rule_arn}},
            )
        )
        rule = cast(events.CfnRule, self.failover_rule.node.default_child)
        rule.targets = [
            events.CfnRule.TargetProperty(id="FailoverLog", arn=arn),
            events.CfnRule.TargetProperty(id="AlarmTopic", arn=self.topic.topic_arn),
        ]


def _constant(api_value: str) -> str:
    """CloudWatch's API spelling as the CDK enum's member name: notBreaching -> NOT_BREACHING."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", api_value).upper()


def _graph(title: str, *metrics: cw.IMetric) -> cw.GraphWidget:
    return cw.GraphWidget(title=title, left=list(metrics), width=8, height=6)


def _rds(metric_name: str, *, statistic: str = "Maximum", **dimensions: str) -> cw.Metric:
    """A metric of the AWS/RDS namespace as an alarm watches it (a label would make it a metric
    math query)."""
    return cw.Metric(
        namespace="AWS/RDS",
        metric_name=metric_name,
        dimensions_map=dimensions,
        period=PERIOD,
        statistic=statistic,
    )


def _shown(metric_name: str, **dimensions: str) -> cw.Metric:
    """The same, labelled with its role for a dashboard graph."""
    role = dimensions.get("Role", "")
    return _rds(metric_name, **dimensions).with_(label=f"{metric_name} {role.lower()}".strip())
