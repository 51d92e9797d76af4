"""Aurora PostgreSQL: a writer and a reader in different AZs, encrypted, backed up, with its secret
in Secrets Manager rotated by a single-user rotation function inside the VPC."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from constructs import Construct

from aws.settings import AppSettings
from aws.stacks.network import Network

#: The consumer's database, named in the secret (``dbname``); the same name as in the local stack.
DB_NAME = "orders"
DB_USER = "postgres"
ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_17_9
BACKUP_DAYS = 7
ROTATION_DAYS = 30


class Database(Construct):
    """The cluster and its secret. The reader is a failover target in the writer's scaling tier."""

    def __init__(
        self, scope: Construct, construct_id: str, *, network: Network, settings: AppSettings
    ) -> None:
        super().__init__(scope, construct_id)
        # A secret of our own rather than the cluster's generated one, so that it carries
        # ``dbname``, which the consumer reads (the cluster attachment adds host, port, cluster id).
        self.secret = rds.DatabaseSecret(self, "Secret", username=DB_USER, dbname=DB_NAME)
        first_az, second_az = network.vpc.availability_zones[:2]
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION),
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
        self.rotation = self.cluster.add_rotation_single_user(
            automatically_after=Duration.days(ROTATION_DAYS),
            # Not at deploy time: a rotation then would race the schema migration for the password.
            rotate_immediately_on_update=False,
        )
        # The rotation function reaches Secrets Manager through its endpoint: wait for it.
        self.rotation.node.add_dependency(network.endpoints["SecretsManager"])


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
