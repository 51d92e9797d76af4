"""The stack: the guidance's architecture around the sandbox's handlers, and the app that holds it.

`create_app` is what ``aws/app.py`` and the tests call, so both synthesize the same thing, with the
same cdk-nag checks, from the same context.
"""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import App, CfnOutput, Environment, Stack, Validations
from aws_cdk import aws_cloudwatch as cw
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from aws import checkov, nag
from aws.settings import REGION, AppSettings
from aws.stacks.api import Api
from aws.stacks.database import Database
from aws.stacks.edge import Edge
from aws.stacks.fis import Experiments
from aws.stacks.functions import Functions
from aws.stacks.monitoring import Monitoring
from aws.stacks.network import Network
from aws.stacks.proxy import Proxy
from aws.stacks.queue import Queues
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.timings import AWS, Timings


class OrdersStack(Stack):
    """Client -> CloudFront + WAF -> API Gateway (Cognito) -> producer -> SQS FIFO (+DLQ) ->
    consumer -> RDS Proxy -> Aurora PostgreSQL writer (reader in the other AZ)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: AppSettings,
        timings: Timings,
        runner: RunnerSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.network = Network(self, "Network")
        self.database = Database(self, "Database", network=self.network, settings=settings)
        self.proxy = Proxy(
            self,
            "Proxy",
            network=self.network,
            database=self.database,
            borrow_timeout_seconds=timings.proxy_borrow_timeout_seconds,
        )
        self.queues = Queues(self, "Queues", settings=timings.queue)
        self.functions = Functions(
            self,
            "Functions",
            network=self.network,
            queues=self.queues,
            database=self.database,
            proxy=self.proxy,
            runner=runner,
            timings=timings,
            direct_path=settings.direct_path,
        )
        self.api = Api(
            self,
            "Api",
            functions=self.functions,
            account_logging_role=settings.api_gateway_account_role,
        )
        self.edge = Edge(self, "Edge", api=self.api.api, origin_key=self.api.origin_key)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            queues=self.queues,
            functions=self.functions,
            api=self.api.api,
            database=self.database,
            proxy=self.proxy,
            serverless=settings.serverless,
            alarm_email=settings.alarm_email,
        )
        # Stop conditions: an order in the DLQ, and what a customer would see: the API answering
        # 5XX for longer than a failover, or accepted orders no longer committing.
        api_errors = cast(cw.Alarm, self.monitoring.node.find_child("ApiServerErrors"))
        self.experiments = Experiments(
            self,
            "Experiments",
            network=self.network,
            database=self.database,
            queues=self.queues,
            functions=self.functions,
            user_pool=self.api.user_pool,
            dashboard=self.monitoring.dashboard,
            stop_alarms=[self.monitoring.dlq_alarm, api_errors, self.monitoring.oldest_alarm],
        )
        self._outputs()

    def _outputs(self) -> None:
        """Everything a drill or the dashboard reads; the names are what they look up."""
        api, functions, queues = self.api, self.functions, self.queues
        cluster = self.database.cluster
        values = {
            "ApiUrl": api.api.url,
            "CloudFrontUrl": f"https://{self.edge.distribution.distribution_domain_name}/",
            "UserPoolId": api.user_pool.user_pool_id,
            "UserPoolClientId": api.client.user_pool_client_id,
            "QueueUrl": queues.queue.queue_url,
            "QueueArn": queues.queue.queue_arn,
            "DlqUrl": queues.dlq.queue_url,
            "DlqArn": queues.dlq.queue_arn,
            "ClusterId": cluster.cluster_identifier,
            "WriterEndpoint": cluster.cluster_endpoint.hostname,
            "ReaderEndpoint": cluster.cluster_read_endpoint.hostname,
            "ProxyEndpoint": self.proxy.endpoint,
            "DbSecretArn": self.database.secret.secret_arn,
            "AppSecretArn": self.database.app_secret.secret_arn,
            "ProducerFunctionName": functions.producer.function_name,
            "ConsumerFunctionName": functions.consumer.function_name,
            "ReconcileFunctionName": functions.reconcile.function_name,
            "AlarmTopicArn": self.monitoring.topic.topic_arn,
            "DashboardName": self.monitoring.dashboard.dashboard_name,
            "FailoverLogGroup": self.monitoring.failover_log.log_group_name,
            "DirectPath": "enabled" if functions.direct is not None else "disabled",
            "FailoverExperimentTemplateId": self.experiments.failover.ref,
            "ConsumerFaultExperimentTemplateId": self.experiments.consumer_fault.ref,
            "ExperimentBucketName": self.experiments.bucket.bucket_name,
            "DrillPolicyArn": self.experiments.drill_policy.managed_policy_arn,
        }
        if functions.direct is not None:
            values["DirectFunctionName"] = functions.direct.function_name
        for name, value in values.items():
            CfnOutput(self, name, value=value)


def create_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> App:
    """The app with its one stack and cdk-nag's AWS Solutions checks (synth fails on a finding)."""
    app = App(context=context, outdir=outdir)
    settings = AppSettings.from_context(app.node)
    stack = OrdersStack(
        app,
        settings.stack_name,
        settings=settings,
        timings=AWS,
        runner=RunnerSettings(),
        env=Environment(region=REGION),
        termination_protection=settings.termination_protection,
        description="Near-zero RPO on Aurora: the sandbox's functions on the real services",
    )
    nag.acknowledge(stack)
    checkov.skip(stack)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
