"""Aurora PostgreSQL: a writer and a reader in different AZs, encrypted, backed up, and two secrets
in Secrets Manager, each rotated by a single-user rotation function inside the VPC.

Two logins. The master user (``postgres``) is for the deploy-time migration alone, which creates
the schema and the application role. The functions (through RDS Proxy) and the reconcile function
log in as that role, ``app``, with the least it needs (``sandbox/spec/grants.sql``, the local
stack's too), from a secret of its own: the proxy's only secret, so nothing logs in as the master
through it. Single-user rotation, not alternating users: RDS Proxy reads only a secret's current
version, so when alternating users switch the username it has no credentials for the other
(aws-cdk issue 25568). With single-user rotation a function whose cached password is refused
fetches the secret again and reconnects (``sandbox/functions/database.py``); connections already
open are not dropped.

What an operator needs to see a failover and its aftermath, and what it costs: Performance
Insights at its free 7-day retention; enhanced monitoring every 60 s (OS metrics in CloudWatch
Logs' RDSOSMetrics group, billed as logs); the PostgreSQL log exported to a log group this stack
creates and keeps for two weeks. The cluster's parameter group is explicit, and forces TLS
(``rds.force_ssl``): the functions already connect with ``sslmode=require``, the proxy requires
TLS from its clients, and nothing may reach the cluster in the clear.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from aws.settings import AppSettings
from aws.stacks.logs import log_group
from aws.stacks.network import Network

#: The consumer's database, named in the secret (``dbname``); the same name as in the local stack.
DB_NAME = "orders"
DB_USER = "postgres"
#: The functions' login role; the local stack's is named the same (`StackState.db_user`).
APP_USER = "app"
#: Characters a generated password leaves out: CDK's default for database secrets (quotes,
#: slashes, @, and what a shell or a connection string would read as syntax).
PASSWORD_EXCLUDED = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"
ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_17_9
BACKUP_DAYS = 7
ROTATION_DAYS = 30
MONITORING_INTERVAL = Duration.seconds(60)  # enhanced monitoring; 1-60 s, finer costs more logs
#: The cluster's parameters that differ from the engine's defaults.
CLUSTER_PARAMETERS = {"rds.force_ssl": "1"}
LOG_EXPORTS = ["postgresql"]


class Database(Construct):
    """The cluster and its secret. The reader is a failover target in the writer's scaling tier."""

    def __init__(
        self, scope: Construct, construct_id: str, *, network: Network, settings: AppSettings
    ) -> None:
        super().__init__(scope, construct_id)
        # A secret of our own rather than the cluster's generated one, so that it carries
        # ``dbname``, which the consumer reads (the cluster attachment adds host, port, cluster id).
        self.secret = rds.DatabaseSecret(self, "Secret", username=DB_USER, dbname=DB_NAME)
        self.app_secret = rds.DatabaseSecret(
            self,
            "AppSecret",
            username=APP_USER,
            dbname=DB_NAME,
            exclude_characters=PASSWORD_EXCLUDED,
        )
        first_az, second_az = network.vpc.availability_zones[:2]
        engine = rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION)
        self.parameter_group = rds.ParameterGroup(
            self,
            "ClusterParameters",
            engine=engine,
            description="Near-zero RPO orders cluster: TLS forced",
            parameters=CLUSTER_PARAMETERS,
        )
        # Named, so the log group RDS exports to can exist (with a retention) before the cluster
        # does; left to RDS, it would be created on first export and kept forever.
        self.cluster_identifier = f"{Stack.of(self).stack_name.lower()}-aurora"
        self.postgresql_log = log_group(
            self,
            "PostgresqlLog",
            name=f"/aws/rds/cluster/{self.cluster_identifier}/postgresql",
        )
        self.monitoring_role = iam.Role(
            self,
            "MonitoringRole",
            assumed_by=iam.ServicePrincipal("monitoring.rds.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonRDSEnhancedMonitoringRole"
                )
            ],
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=engine,
            cluster_identifier=self.cluster_identifier,
            parameter_group=self.parameter_group,
            enable_performance_insights=True,
            performance_insight_retention=rds.PerformanceInsightRetention.DEFAULT,
            monitoring_interval=MONITORING_INTERVAL,
            monitoring_role=self.monitoring_role,
            cloudwatch_logs_exports=LOG_EXPORTS,
            credentials=rds.Credentials.from_secret(self.secret),
            default_database_name=DB_NAME,
            writer=_instance("Writer", settings, first_az, reader=False),
            readers=[_instance("Reader", settings, second_az, reader=True)],
            serverless_v2_min_capacity=settings.min_acu if settings.serverless else None,
            serverless_v2_max_capacity=settings.max_acu if settings.serverless else None,
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            storage_encrypted=True,
            iam_authentication=True,
            backup=rds.BackupProps(retention=Duration.days(BACKUP_DAYS)),
            deletion_protection=settings.deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        self.cluster.node.add_dependency(self.postgresql_log)
        self.rotation = self.cluster.add_rotation_single_user(
            automatically_after=Duration.days(ROTATION_DAYS),
            # Not at deploy time: a rotation then would race the schema migration for the password.
            rotate_immediately_on_update=False,
        )
        # The rotation function reaches Secrets Manager through its endpoint: wait for it.
        self.rotation.node.add_dependency(network.endpoints["SecretsManager"])
        # Attached, so it carries the cluster's host and port: the reconcile function reads them,
        # and the rotation function connects there (not through the proxy) as the role itself.
        self.app_attachment = self.app_secret.attach(self.cluster)
        self.app_rotation = secretsmanager.SecretRotation(
            self,
            "AppSecretRotation",
            application=secretsmanager.SecretRotationApplication.POSTGRES_ROTATION_SINGLE_USER,
            secret=self.app_attachment,
            target=self.cluster,
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            # What the secret's password was generated without (as the cluster's rotation has).
            exclude_characters=PASSWORD_EXCLUDED,
            automatically_after=Duration.days(ROTATION_DAYS),
            # Not at deploy time: the role it rotates is created by the migration after it.
            rotate_immediately_on_update=False,
        )
        self.app_rotation.node.add_dependency(network.endpoints["SecretsManager"])


def _instance(
    name: str, settings: AppSettings, availability_zone: str, *, reader: bool
) -> rds.IClusterInstance:
    if settings.serverless:
        # scale_with_writer keeps the reader at the writer's capacity: promotion tier 1, so a
        # failover lands on an instance already sized for the load.
        return rds.ClusterInstance.serverless_v2(
            name, availability_zone=availability_zone, scale_with_writer=reader
        )
    return rds.ClusterInstance.provisioned(
        name,
        instance_type=ec2.InstanceType(settings.instance_class.removeprefix("db.")),
        availability_zone=availability_zone,
        promotion_tier=1 if reader else None,
    )
