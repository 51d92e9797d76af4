"""What a drill watches: a dashboard of the queue, the functions, the proxy and the cluster; alarms
for the two signs of trouble (a message in the DLQ, a queue that stopped draining) to an SNS topic;
and a log of every RDS failover event of this cluster, recorded by an EventBridge rule."""

from __future__ import annotations

import re
from typing import cast

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
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
from aws.stacks.proxy import Proxy
from aws.stacks.queue import Queues
from sandbox.spec.alarms import DLQ_NOT_EMPTY
from sandbox.spec.queue import QueueSettings

PERIOD = Duration.minutes(1)
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
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
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
        for alarm in (self.dlq_alarm, self.oldest_alarm):
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            alarm.add_ok_action(cw_actions.SnsAction(self.topic))

        self.failover_log = logs.LogGroup(
            self,
            "FailoverEvents",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
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
            cw.AlarmStatusWidget(alarms=[self.dlq_alarm, self.oldest_alarm], width=24, height=3),
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
                _rds("ClientConnections", ProxyName=proxy.proxy.db_proxy_name),
                _rds("DatabaseConnections", ProxyName=proxy.proxy.db_proxy_name),
            ),
        )
        roles = ("WRITER", "READER")
        capacity = "ServerlessDatabaseCapacity" if serverless else "FreeableMemory"
        cluster_id = cluster.cluster_identifier
        self.dashboard.add_widgets(
            _graph(
                "Cluster connections",
                *(
                    _rds("DatabaseConnections", DBClusterIdentifier=cluster_id, Role=r)
                    for r in roles
                ),
            ),
            _graph(
                "CPU by role",
                *(_rds("CPUUtilization", DBClusterIdentifier=cluster_id, Role=r) for r in roles),
            ),
            # Serverless v2 scales in ACUs; a provisioned instance has a fixed size and memory.
            _graph(
                "Capacity (ACU) by role" if serverless else "Freeable memory by role",
                *(_rds(capacity, DBClusterIdentifier=cluster_id, Role=r) for r in roles),
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "Commit latency (writer)",
                _rds("CommitLatency", DBClusterIdentifier=cluster_id, Role="WRITER"),
            ),
            _graph(
                "Replica lag (reader, ms)",
                _rds("AuroraReplicaLag", DBClusterIdentifier=cluster_id, Role="READER"),
            ),
        )

    def _record_to(self, log_group: logs.LogGroup) -> None:
        """The failover rule's target: the log group, with a resource policy letting EventBridge
        write to it. `targets.CloudWatchLogGroup` would do the same through a custom resource (a
        Lambda function and a role with a wildcard policy); the native resource needs neither."""
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
        rule = cast(events.CfnRule, self.failover_rule.node.default_child)
        rule.targets = [events.CfnRule.TargetProperty(id="FailoverLog", arn=arn)]


def _constant(api_value: str) -> str:
    """CloudWatch's API spelling as the CDK enum's member name: notBreaching -> NOT_BREACHING."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", api_value).upper()


def _graph(title: str, *metrics: cw.IMetric) -> cw.GraphWidget:
    return cw.GraphWidget(title=title, left=list(metrics), width=8, height=6)


def _rds(metric_name: str, **dimensions: str) -> cw.Metric:
    role = dimensions.get("Role", "")
    return cw.Metric(
        namespace="AWS/RDS",
        metric_name=metric_name,
        dimensions_map=dimensions,
        period=PERIOD,
        statistic="Maximum",
        label=f"{metric_name} {role.lower()}".strip(),
    )
