"""Two AZs and no NAT gateway: everything that leaves the VPC goes through a VPC endpoint."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from aws.stacks.logs import log_group

#: The AWS APIs the functions, the secret rotation and the logs reach from inside the VPC. (Lambda
#: itself needs no endpoint: nothing in the VPC calls the Lambda API.)
INTERFACE_ENDPOINTS = {
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
}


class Network(Construct):
    """A VPC of isolated subnets in two AZs, its interface endpoints, and its flow log."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
            ],
        )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.endpoints = {
            name: self.vpc.add_interface_endpoint(name, service=service, subnets=self.subnets)
            for name, service in INTERFACE_ENDPOINTS.items()
        }
        flow_logs = log_group(
            self,
            "FlowLogs",
        )
        self.vpc.add_flow_log(
            "FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
        )
