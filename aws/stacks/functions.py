"""The Lambda functions: the sandbox's own producer and consumer (and, optionally, the direct-write
path), plus the admin function that reconciles and migrates.

Timeouts. The consumer's timeout is the deployed set's (`sandbox.spec.timings.AWS`: 10 s, for a
cold start's secret, a TLS connection through the proxy and a batch), not the local drills' 1 s;
synth refuses timings that break the rule both sets keep (`Timings.problems`: a visibility
timeout >= 6x the function's, a retry budget covering Aurora's failover, the proxy's borrow
timeout under the function's). The consumer also carries the FIS extension (``aws/stacks/fis.py``),
which may hold an invocation up to 2 s for its poll in flight (AWS_FIS_POLL_MAX_WAIT_MILLISECONDS):
that comes out of the same 10 s.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, triggers
from aws_cdk import aws_lambda as lambda_
from aws_cdk.aws_lambda_event_sources import SqsEventSource
from constructs import Construct

from aws import assets
from aws.stacks.database import Database
from aws.stacks.logs import log_group
from aws.stacks.network import Network
from aws.stacks.proxy import PORT, Proxy
from aws.stacks.queue import Queues
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.timings import Timings

PRODUCER = "sandbox.functions.producer.handler"
CONSUMER = "sandbox.functions.consumer.handler"
DIRECT = "sandbox.functions.direct.handler"
RECONCILE = "reconcile.handler"
MIGRATE = "reconcile.migrate"

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
MEMORY_MB = 512  # more memory is more CPU: TLS handshakes within the consumer's short timeout
API_FUNCTION_TIMEOUT = Duration.seconds(10)  # well inside API Gateway's 29 s integration timeout


class Functions(Construct):
    """Every function runs in the VPC's isolated subnets, on one dependency layer."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: Network,
        queues: Queues,
        database: Database,
        proxy: Proxy,
        runner: RunnerSettings,
        timings: Timings,
        direct_path: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        if problems := timings.problems():
            raise ValueError("; ".join(problems))
        self._network = network
        self._layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(assets.build_layer())),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="Powertools, pydantic, psycopg[binary] for manylinux x86_64, CPython 3.12",
        )
        handlers_dir = assets.stage_handlers()
        admin_dir = assets.stage_admin()
        # What sandbox/functions/database.py reads (consumer and direct): exactly these variables.
        # The application role's secret, never the master's (the proxy holds only that one).
        database_env = {
            "DB_SECRET_ID": database.app_secret.secret_arn,
            "DB_PROXY_HOST": proxy.endpoint,
            "DB_PROXY_PORT": str(PORT),
            "DB_SSLMODE": "require",
        }

        self.producer = self._function(
            "Producer",
            handlers_dir,
            PRODUCER,
            timeout=API_FUNCTION_TIMEOUT,
            environment={"QUEUE_URL": queues.queue.queue_url},
        )
        # What a producer needs on a queue under a customer-managed key, exactly: CDK's
        # grant_send_messages would also grant kms:ReEncrypt* and kms:GenerateDataKey*.
        queues.queue.grant(self.producer, "sqs:SendMessage")
        queues.key.grant(self.producer, "kms:GenerateDataKey", "kms:Decrypt")

        self.consumer = self._function(
            "Consumer",
            handlers_dir,
            CONSUMER,
            timeout=Duration.seconds(timings.function_timeout_seconds),
            environment=database_env,
        )
        self.consumer.add_event_source(
            SqsEventSource(
                queues.queue,
                batch_size=runner.batch_size,
                # Lambda refuses a batching window on FIFO queues.
                max_batching_window=None
                if queues.settings.fifo or not runner.batching_window_seconds
                else Duration.seconds(runner.batching_window_seconds),
                max_concurrency=runner.concurrency,
                report_batch_item_failures=True,
            )
        )
        database.app_secret.grant_read(self.consumer)
        proxy.allow(self.consumer)

        self.direct: lambda_.Function | None = None
        if direct_path:
            self.direct = self._function(
                "Direct",
                handlers_dir,
                DIRECT,
                timeout=API_FUNCTION_TIMEOUT,
                environment=database_env,
            )
            database.app_secret.grant_read(self.direct)
            proxy.allow(self.direct)

        # Reconcile reads orders as the application role (its secret is attached to the cluster,
        # so it names the writer). Only the migration logs in as the master user: it creates the
        # schema and the role, whose password it reads from the role's own secret.
        self.reconcile = self._function(
            "Reconcile",
            admin_dir,
            RECONCILE,
            Duration.seconds(30),
            {"DB_SECRET_ID": database.app_secret.secret_arn},
        )
        self.migrate = self._function(
            "Migrate",
            admin_dir,
            MIGRATE,
            Duration.seconds(60),
            {
                "DB_SECRET_ID": database.secret.secret_arn,
                "APP_SECRET_ID": database.app_secret.secret_arn,
            },
        )
        database.app_secret.grant_read(self.reconcile)
        database.secret.grant_read(self.migrate)
        database.app_secret.grant_read(self.migrate)
        for admin in (self.reconcile, self.migrate):
            database.cluster.connections.allow_default_port_from(admin, "admin function")
        # Creates the schema once what it reads exists, and again (a no-op unless the schema is
        # missing) whenever the migrate function's code or configuration changes. What it reads:
        # the secret's host and port, which the secret's attachment to the cluster writes (a
        # construct of the secret, not of the cluster, so not covered by waiting for the
        # cluster), through the Secrets Manager endpoint, then the cluster's writer.
        attachment = database.cluster.secret
        if attachment is None:
            raise ValueError("the cluster has no attached secret for the migration to read")
        self.migration = triggers.Trigger(
            self,
            "MigrateOnDeploy",
            handler=self.migrate,
            execute_after=[database.cluster, attachment, network],
            timeout=Duration.minutes(3),
        )

    def _function(
        self,
        name: str,
        code_dir: Path,
        handler: str,
        timeout: Duration,
        environment: dict[str, str],
    ) -> lambda_.Function:
        if not assets.handler_exists(code_dir, handler):
            raise FileNotFoundError(f"{name}: no module for handler {handler!r} in {code_dir}")
        logs_of_function = log_group(
            self,
            f"{name}Logs",
        )
        return lambda_.Function(
            self,
            name,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=lambda_.Code.from_asset(str(code_dir)),
            handler=handler,
            layers=[self._layer],
            memory_size=MEMORY_MB,
            timeout=timeout,
            environment=environment,
            vpc=self._network.vpc,
            vpc_subnets=self._network.subnets,
            log_group=logs_of_function,
            # Lambda's own segments (no SDK in the handlers): the invocation, its init and its
            # duration, joined to API Gateway's trace. Sent by Lambda, not from the VPC.
            tracing=lambda_.Tracing.ACTIVE,
        )
