"""The drill on AWS as Fault Injection Service (FIS) experiments: a writer failover and a consumer
fault, each stopped by the stack's alarms and reported to S3, and the policy a drill runs with.

What the local sandbox does with its own failover and fault code, FIS does here with documented
actions (FIS user guide, "Actions reference"):

- ``aws:rds:failover-db-cluster`` on the cluster (target key ``Clusters``, resource type
  ``aws:rds:cluster``): RDS FailoverDBCluster, the way AWS documents to simulate a writer failure.
- ``aws:lambda:invocation-error`` on the consumer (target key ``Functions``, resource type
  ``aws:lambda:function``; parameters ``duration``, ``invocationPercentage``,
  ``preventExecution``): the consumer runs each batch, then FIS's extension fails the invocation,
  so its batch comes back after the visibility timeout though its orders committed: the local
  ``consumer-crash`` (a crash after the commit, before the delete), and the idempotent insert has
  to keep each order once.

The Lambda actions work through the FIS extension, a layer on the function that reads fault
configurations FIS writes to S3 (FIS user guide, "Use the AWS FIS aws:lambda:function actions"):
the layer's ARN is AWS's public SSM parameter, and the function needs
``AWS_FIS_CONFIGURATION_LOCATION`` (an S3 ARN ending in ``/``) and
``AWS_LAMBDA_EXEC_WRAPPER=/opt/aws-fis/bootstrap``; this stack also sets how often it polls and
how long an invocation waits for a poll in flight (`SLOW_POLL_SECONDS`,
`POLL_MAX_WAIT_MILLISECONDS`). The functions run in isolated subnets with no
NAT, so the extension reaches S3 through a gateway endpoint, whose policy admits this bucket only.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Aws, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_fis as fis
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from aws.stacks.database import Database
from aws.stacks.functions import ARCHITECTURE, Functions
from aws.stacks.network import Network
from aws.stacks.queue import Queues

#: AWS's public parameter holding the FIS extension's layer ARN in each region, per architecture
#: (``x86_64`` or ``arm64``, Lambda's names; FIS user guide, "Available versions of the AWS FIS
#: extension for Lambda"). Resolved at deploy time, so the layer is that region's.
EXTENSION_PARAMETER = "/aws/service/fis/lambda-extension/AWS-FIS-extension-{}/1.x.x"
#: The folder FIS writes fault configurations to and the extension reads them from.
CONFIG_PREFIX = "FisConfigs/"
REPORT_PREFIX = "reports"
EXEC_WRAPPER = "/opt/aws-fis/bootstrap"
#: How often the extension polls S3 while no experiment runs: AWS's default is 60 s (faults take
#: up to that long to reach every invocation); 20 s is the least the extension accepts.
SLOW_POLL_SECONDS = 20
#: How long an invocation waits for the extension's poll in flight before the fault is decided
#: (``AWS_FIS_POLL_MAX_WAIT_MILLISECONDS``; default 0: never waits). The extension polls only
#: while the function runs, so without it a poll that has not finished when a short invocation
#: ends finishes in a later one, and the fault starts only from there (FIS user guide, "Use the
#: AWS FIS aws:lambda:function actions", "Special considerations for fast infrequent functions"
#: and "AWS FIS Lambda environment variables",
#: https://docs.aws.amazon.com/fis/latest/userguide/use-lambda-actions.html). 2 s: the value the
#: FIS actions reference gives as its example, some 30 times the 70 ms the guide gives as an
#: average poll (room for S3 through the gateway endpoint on a cold path), and short next to the
#: consumer's 10 s timeout (`sandbox.spec.timings.AWS`), which keeps 8 s for its batch; it is
#: paid only by invocations that find a poll in flight.
POLL_MAX_WAIT_MILLISECONDS = 2000
#: The consumer fault: every invocation in the window fails after its batch ran. 180 s: the
#: drill's ramp-up (`sandbox.drills.targets.aws.RAMP_UP_SECONDS`, 60 s: three slow polls, AWS's
#: documented worst case at its default interval), then two of the queue's 60 s visibility timeouts
#: of the held traffic meeting the fault, so a batch failed by it is received again, and fails
#: again, inside it (checked by test). Still short next to the queue's retry budget
#: (visibility x maxReceiveCount, 600 s): no order runs out of receives because of it.
CONSUMER_FAULT_SECONDS = 180
#: How much of the dashboard before and after the experiment its report shows: five of its
#: one-minute periods each side, enough to see the stack settle.
REPORT_WINDOW = "PT5M"


class Experiments(Construct):
    """Two experiment templates, their role and bucket, and the managed policy for drills."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: Network,
        database: Database,
        queues: Queues,
        functions: Functions,
        user_pool: cognito.IUserPool,
        dashboard: cw.Dashboard,
        stop_alarms: Sequence[cw.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.stop_alarms = list(stop_alarms)
        # Fault configurations (FIS writes, the extension reads, a day is plenty) and reports
        # (kept: they are a drill's evidence, and outlive the stack).
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(prefix=CONFIG_PREFIX, expiration=Duration.days(1)),
                s3.LifecycleRule(prefix=f"{REPORT_PREFIX}/", expiration=Duration.days(365)),
            ],
        )
        _checkov_skip(
            self.bucket,
            CKV_AWS_18="no access log bucket: FIS and the drill policy are the only writers and "
            "readers, and CloudTrail records their API calls",
            CKV_AWS_21="no versioning: fault configurations are rewritten by FIS each experiment "
            "and expire in a day; reports are written once",
        )
        self.endpoint = self._s3_endpoint(network)
        consumer = functions.consumer
        self._arm(consumer)

        cluster_arn = stack.format_arn(
            service="rds",
            resource="cluster",
            resource_name=database.cluster.cluster_identifier,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.role = self._role(cluster_arn, consumer, dashboard)
        self.failover = self._template(
            "WriterFailover",
            "Writer failover: RDS FailoverDBCluster on the cluster (the drill's crash and "
            "switchover)",
            target=("Cluster", "aws:rds:cluster", cluster_arn, "Clusters"),
            action=("FailoverWriter", "aws:rds:failover-db-cluster", {}),
            report="writer-failover",
            dashboard=dashboard,
        )
        self.consumer_fault = self._template(
            "ConsumerFault",
            "Consumer fault: every consumer invocation fails after it ran, for "
            f"{CONSUMER_FAULT_SECONDS} s (the drill's consumer-crash)",
            target=("Consumer", "aws:lambda:function", consumer.function_arn, "Functions"),
            action=(
                "FailConsumerInvocations",
                "aws:lambda:invocation-error",
                {
                    "duration": f"PT{CONSUMER_FAULT_SECONDS}S",
                    "invocationPercentage": "100",
                    "preventExecution": "false",
                },
            ),
            report="consumer-fault",
            dashboard=dashboard,
        )
        self.drill_policy = self._drill_policy(queues, functions, user_pool)

    def _s3_endpoint(self, network: Network) -> ec2.GatewayVpcEndpoint:
        """The isolated subnets' only way to S3 (a gateway endpoint is free), for this bucket."""
        endpoint = network.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[network.subnets]
        )
        endpoint.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject", "s3:ListBucket"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
            )
        )
        return endpoint

    def _arm(self, consumer: lambda_.Function) -> None:
        """The extension on the consumer: its layer, its two required variables, and read access
        to the configuration folder (the statements the FIS user guide gives)."""
        parameter = EXTENSION_PARAMETER.format(ARCHITECTURE.name)
        layer_arn = ssm.StringParameter.value_for_string_parameter(self, parameter)
        consumer.add_layers(
            lambda_.LayerVersion.from_layer_version_arn(self, "Extension", layer_arn)
        )
        consumer.add_environment(
            "AWS_FIS_CONFIGURATION_LOCATION", self.bucket.arn_for_objects(CONFIG_PREFIX)
        )
        consumer.add_environment("AWS_LAMBDA_EXEC_WRAPPER", EXEC_WRAPPER)
        consumer.add_environment("AWS_FIS_SLOW_POLL_INTERVAL_SECONDS", str(SLOW_POLL_SECONDS))
        consumer.add_environment(
            "AWS_FIS_POLL_MAX_WAIT_MILLISECONDS", str(POLL_MAX_WAIT_MILLISECONDS)
        )
        consumer.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{CONFIG_PREFIX}*"]}},
            )
        )
        consumer.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{CONFIG_PREFIX}*")],
            )
        )
        # The extension's first poll must not wait for the endpoint to exist.
        consumer.node.add_dependency(self.endpoint)

    def _role(
        self, cluster_arn: str, consumer: lambda_.Function, dashboard: cw.Dashboard
    ) -> iam.Role:
        """FIS's experiment role: each action's documented permissions, on these resources only,
        assumable by this account's experiments only (the confused-deputy conditions)."""
        role = iam.Role(
            self,
            "Role",
            description="Runs this stack's FIS experiments: fails over the cluster, fails the "
            "consumer's invocations, writes the experiment reports",
            assumed_by=iam.ServicePrincipal(
                "fis.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:fis:{Aws.REGION}:"
                        f"{Aws.ACCOUNT_ID}:experiment/*"
                    },
                },
            ),
        )
        configs = self.bucket.arn_for_objects(f"{CONFIG_PREFIX}*")
        statements = [
            # aws:rds:failover-db-cluster: the failover on this cluster only. The describe calls
            # are read-only and on "*", as in AWS's managed AWSFaultInjectionSimulatorRDSAccess:
            # FIS may call DescribeDBClusters and DescribeDBInstances without an identifier while
            # it resolves targets, and a call without one is authorized against "*", which a
            # cluster-scoped grant would refuse.
            (["rds:FailoverDBCluster"], [cluster_arn]),
            (["rds:DescribeDBClusters", "rds:DescribeDBInstances"], ["*"]),
            # aws:lambda:invocation-error: FIS reads the function's configuration, then writes
            # and deletes fault configurations where its extension looks.
            (["lambda:GetFunction"], [consumer.function_arn]),
            (["s3:PutObject", "s3:DeleteObject"], [configs]),
            # Listed by the FIS user guide for the Lambda actions; it has no resource-level form.
            (["tag:GetResources"], ["*"]),
            # The experiment report: the PDF and widget images to S3, the dashboard's snapshots
            # (GetMetricWidgetImage has no resource-level form).
            (["s3:PutObject", "s3:GetObject"], [self.bucket.arn_for_objects(f"{REPORT_PREFIX}/*")]),
            (["cloudwatch:GetDashboard"], [_dashboard_arn(dashboard)]),
            (["cloudwatch:GetMetricWidgetImage"], ["*"]),
        ]
        for actions, resources in statements:
            role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))
        return role

    def _template(
        self,
        name: str,
        description: str,
        *,
        target: tuple[str, str, str, str],
        action: tuple[str, str, dict[str, str]],
        report: str,
        dashboard: cw.Dashboard,
    ) -> fis.CfnExperimentTemplate:
        """One action on one resource named by its ARN (no tag lookup can widen it), stopped by
        any of the stop alarms, reported with the dashboard around it."""
        target_name, resource_type, arn, target_key = target
        action_name, action_id, parameters = action
        template = fis.CfnExperimentTemplate(
            self,
            name,
            description=description,
            role_arn=self.role.role_arn,
            targets={
                target_name: fis.CfnExperimentTemplate.ExperimentTemplateTargetProperty(
                    resource_type=resource_type, resource_arns=[arn], selection_mode="ALL"
                )
            },
            actions={
                action_name: fis.CfnExperimentTemplate.ExperimentTemplateActionProperty(
                    action_id=action_id,
                    parameters=parameters or None,
                    targets={target_key: target_name},
                )
            },
            stop_conditions=[
                fis.CfnExperimentTemplate.ExperimentTemplateStopConditionProperty(
                    source="aws:cloudwatch:alarm", value=alarm.alarm_arn
                )
                for alarm in self.stop_alarms
            ],
            experiment_report_configuration=_report(self.bucket, report, dashboard),
            tags={"Name": f"{Stack.of(self).stack_name}-{report}"},
        )
        # The role's policy must exist before FIS validates the template against it (the role
        # itself is referenced already).
        template.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        return template

    def _drill_policy(
        self, queues: Queues, functions: Functions, user_pool: cognito.IUserPool
    ) -> iam.ManagedPolicy:
        """What `sandbox drill --target aws` calls, on this stack's resources: attach it to whoever
        runs drills. (FIS itself acts with the experiment role; this policy cannot fail over the
        cluster or touch the consumer except by starting one of these two templates.)"""
        stack = Stack.of(self)
        templates = [
            stack.format_arn(service="fis", resource="experiment-template", resource_name=t.ref)
            for t in (self.failover, self.consumer_fault)
        ]
        experiments = stack.format_arn(service="fis", resource="experiment", resource_name="*")
        queue, dlq = queues.queue, queues.dlq
        statements = [
            (["cloudformation:DescribeStacks"], [stack.stack_id]),
            (
                ["cognito-idp:AdminCreateUser", "cognito-idp:AdminSetUserPassword"],
                [user_pool.user_pool_arn],
            ),
            # StartExperiment is authorized on the template and on the experiment it creates.
            (["fis:StartExperiment"], [*templates, experiments]),
            (["fis:GetExperiment", "fis:StopExperiment"], [experiments]),
            # Which stop condition fired.
            (["cloudwatch:DescribeAlarms"], [a.alarm_arn for a in self.stop_alarms]),
            # Whether the consumer fault landed: the consumer's Errors and Invocations over the
            # experiment (GetMetricData has no resource-level form).
            (["cloudwatch:GetMetricData"], ["*"]),
            (["s3:GetObject"], [self.bucket.arn_for_objects(f"{REPORT_PREFIX}/*")]),
            # DescribeEvents has no resource-level form.
            (["rds:DescribeEvents"], ["*"]),
            (["sqs:GetQueueAttributes"], [queue.queue_arn, dlq.queue_arn]),
            # Peek at the DLQ, and its redrive: the move task acts with the caller's permissions.
            (
                [
                    "sqs:ReceiveMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:StartMessageMoveTask",
                    "sqs:ListMessageMoveTasks",
                ],
                [dlq.queue_arn],
            ),
            (["sqs:SendMessage"], [queue.queue_arn]),
            (["lambda:InvokeFunction"], [functions.reconcile.function_arn]),
        ]
        keys = {q.encryption_master_key.key_arn for q in (queue, dlq) if q.encryption_master_key}
        if keys:  # reading the DLQ and moving its messages to the queue use the queues' keys
            statements.append((["kms:Decrypt", "kms:GenerateDataKey"], sorted(keys)))
        return iam.ManagedPolicy(
            self,
            "DrillPolicy",
            description=f"Run `sandbox drill --target aws` against {stack.stack_name}",
            statements=[iam.PolicyStatement(actions=a, resources=r) for a, r in statements],
        )


def _report(
    bucket: s3.IBucket, name: str, dashboard: cw.Dashboard
) -> fis.CfnExperimentTemplate.ExperimentTemplateExperimentReportConfigurationProperty:
    template = fis.CfnExperimentTemplate
    return template.ExperimentTemplateExperimentReportConfigurationProperty(
        outputs=template.OutputsProperty(
            experiment_report_s3_configuration=template.ExperimentReportS3ConfigurationProperty(
                bucket_name=bucket.bucket_name, prefix=f"{REPORT_PREFIX}/{name}"
            )
        ),
        data_sources=template.DataSourcesProperty(
            cloud_watch_dashboards=[
                template.CloudWatchDashboardProperty(dashboard_identifier=_dashboard_arn(dashboard))
            ]
        ),
        pre_experiment_duration=REPORT_WINDOW,
        post_experiment_duration=REPORT_WINDOW,
    )


def _dashboard_arn(dashboard: cw.Dashboard) -> str:
    """``Dashboard.dashboard_arn`` leaves the name out of a dashboard CDK named (its physical name
    is unset): the ARN from its Ref, which is its name."""
    return Stack.of(dashboard).format_arn(
        service="cloudwatch",
        region="",
        resource="dashboard",
        resource_name=dashboard.dashboard_name,
    )


def _checkov_skip(construct: Construct, **reasons: str) -> None:
    """Checkov's CloudFormation skip syntax, with the reason beside the resource."""
    resource = construct.node.default_child
    assert isinstance(resource, CfnResource)
    resource.add_metadata(
        "checkov", {"skip": [{"id": check, "comment": why} for check, why in reasons.items()]}
    )
