"""RDS Proxy in front of the writer: TLS required, with the application role's secret as its only
credentials (clients log in as ``app``, never as the master user; the proxy logs in to the
cluster with the same secret, and picks up a rotated password from it).

During a failover the proxy keeps client connections open and re-targets the new writer, so the
functions see a pause, not a refused connection. How long a borrow may wait for a database
connection (``ConnectionBorrowTimeout``, 120 s by default) comes from the deployed timings
(`sandbox.spec.timings.AWS`): under the consumer's timeout, so a held record fails with the
proxy's error rather than with Lambda's timeout."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from constructs import Construct

from aws.stacks.database import Database
from aws.stacks.network import Network

PORT = 5432
#: RDS Proxy's own ConnectionBorrowTimeout when none is set.
DEFAULT_BORROW_TIMEOUT_SECONDS = 120


class Proxy(Construct):
    """The proxy and its endpoint; `allow` opens it to a function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: Network,
        database: Database,
        borrow_timeout_seconds: int | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.borrow_timeout_seconds = borrow_timeout_seconds or DEFAULT_BORROW_TIMEOUT_SECONDS
        self.proxy = rds.DatabaseProxy(
            self,
            "Proxy",
            # Proxy names are unique per account and region: one per stack.
            db_proxy_name=f"{Stack.of(self).stack_name.lower()}-proxy",
            proxy_target=rds.ProxyTarget.from_cluster(database.cluster),
            secrets=[database.app_secret],
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            require_tls=True,
            borrow_timeout=None
            if borrow_timeout_seconds is None
            else Duration.seconds(borrow_timeout_seconds),
        )

    @property
    def endpoint(self) -> str:
        return self.proxy.endpoint

    def allow(self, peer: ec2.IConnectable) -> None:
        self.proxy.connections.allow_from(peer, ec2.Port.tcp(PORT), "PostgreSQL through the proxy")
