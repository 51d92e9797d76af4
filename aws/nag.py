"""Every cdk-nag finding this app accepts, with its reason, in one place.

Each acknowledgment is scoped to the construct it is about, not to the whole stack, so a new
resource elsewhere that breaks the same rule still fails synth. The tests check that each one is
used (a fix that makes one unnecessary must remove it) and that each has a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

from aws.settings import REGION

if TYPE_CHECKING:
    from aws.stacks.orders import OrdersStack

PACK = "AwsSolutions"
_MANAGED = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role"


@dataclass(frozen=True)
class Accepted:
    """A finding (``AwsSolutions-XXX``, or ``...[detail]`` for one of a rule's several findings),
    why it is acceptable here, and where: the constructs the acknowledgment is attached to."""

    rule: str
    reason: str
    where: Callable[[OrdersStack], Sequence[IConstruct]]

    @property
    def id(self) -> str:
        return f"{PACK}::{self.rule}"


ACCEPTED: tuple[Accepted, ...] = (
    Accepted(
        "AwsSolutions-EC23",
        "The interface endpoints' security groups admit HTTPS from the VPC's own CIDR only (the "
        "CDK default); cdk-nag cannot resolve that CIDR at synth time and flags it as open.",
        lambda stack: [stack.network],
    ),
    Accepted(
        f"AwsSolutions-IAM4[{_MANAGED}/AWSLambdaBasicExecutionRole]",
        "AWS's managed policy for writing a function's own logs: the scoped equivalent CDK "
        "would generate is the same statement, and AWS maintains this one.",
        lambda stack: [stack.functions],
    ),
    Accepted(
        f"AwsSolutions-IAM4[{_MANAGED}/AWSLambdaVPCAccessExecutionRole]",
        "Functions in a VPC need to create and delete their network interfaces; EC2 does not "
        "support resource-level permissions for those calls, so any policy would be the same.",
        lambda stack: [stack.functions],
    ),
    Accepted(
        f"AwsSolutions-IAM4[{_MANAGED}/AmazonRDSEnhancedMonitoringRole]",
        "The role RDS assumes to publish enhanced monitoring's OS metrics: AWS's managed policy "
        "is the one the RDS user guide documents, and it writes only to the RDSOS log groups.",
        lambda stack: [stack.database.monitoring_role],
    ),
    Accepted(
        "AwsSolutions-L1",
        "Python 3.12 on purpose: the dependency layer is built for cp312 and the local sandbox "
        "tests the same handlers on 3.12. Moving on means changing both (assets.LAMBDA_PYTHON).",
        lambda stack: [stack.functions],
    ),
    Accepted(
        "AwsSolutions-APIG2",
        "The producer validates every body with the same pydantic model locally and in AWS and "
        "answers 400 naming the field; a gateway validator would answer differently from the "
        "sandbox, and only duplicate the model.",
        lambda stack: [stack.api.api],
    ),
    Accepted(
        "AwsSolutions-APIG3",
        "The web ACL is on the CloudFront distribution in front of the API, the documented entry "
        "point; a second, regional web ACL on the stage would double the WAF cost. Callers "
        "cannot go around it: every method needs the API key only CloudFront sends.",
        lambda stack: [stack.api.api],
    ),
    Accepted(
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray's xray:PutTraceSegments and xray:PutTelemetryRecords, which active tracing adds to "
        "each function's role, have no resource-level permissions.",
        lambda stack: [stack.functions],
    ),
    Accepted(
        "AwsSolutions-SMG4",
        "The origin key is an API key CloudFront sends and API Gateway checks, both read from "
        "the secret by CloudFormation at deploy: a rotated value would reach neither until both "
        "were updated. It only proves a request came through CloudFront; Cognito's token proves "
        "the caller.",
        lambda stack: [stack.api.origin_key_secret],
    ),
    Accepted(
        "AwsSolutions-COG2",
        "The pool's users are drill and workshop identities signing in from scripts "
        "(USER_PASSWORD_AUTH); self sign-up is off and passwords are long. MFA would make "
        "scripted drills impossible.",
        lambda stack: [stack.api.user_pool],
    ),
    Accepted(
        "AwsSolutions-COG8",
        "The Plus feature plan (threat protection) is billed per monthly active user on top of "
        "the free tier; for a workshop pool of a few script users it adds cost, not protection.",
        lambda stack: [stack.api.user_pool],
    ),
    Accepted(
        "AwsSolutions-CFR1",
        "No geo restriction: a workshop's participants and drills may come from anywhere; the "
        "WAF rate limit and Cognito guard the API.",
        lambda stack: [stack.edge.distribution],
    ),
    Accepted(
        "AwsSolutions-CFR3",
        "No CloudFront access logs (they need an S3 bucket with ACLs): API Gateway's access log "
        "records every request that reaches the API, and WAF samples what it blocks.",
        lambda stack: [stack.edge.distribution],
    ),
    Accepted(
        "AwsSolutions-CFR4",
        "The distribution uses the default *.cloudfront.net certificate, whose minimum TLS "
        "version CloudFront does not let us raise; a custom domain with an ACM certificate "
        "would, and is left to a team that has one.",
        lambda stack: [stack.edge.distribution],
    ),
)

#: Only when deletion protection is off (the workshop default), so `make destroy` can tear down.
DELETION_PROTECTION_OFF = Accepted(
    "AwsSolutions-RDS10",
    "Deletion protection is off by default so that a workshop can tear the stack down with "
    "`make destroy`; turn it on with `-c deletion_protection=true`. A final snapshot is kept.",
    lambda stack: [stack.database.cluster],
)


def experiments(stack: OrdersStack) -> tuple[Accepted, ...]:
    """The FIS experiments' findings (``aws/stacks/fis.py``): object prefixes and API calls that
    have no narrower form. Built per stack: a finding names the bucket by its logical id."""
    fis = stack.experiments
    bucket = stack.get_logical_id(fis.bucket.node.default_child)
    return (
        Accepted(
            "AwsSolutions-S1",
            "The FIS bucket holds fault configurations (expire in a day) and experiment reports; "
            "FIS and the drill policy are its only writers and readers, and CloudTrail records "
            "their calls. An access log bucket would only log those.",
            lambda stack: [stack.experiments.bucket],
        ),
        Accepted(
            f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/FisConfigs/*]",
            "FIS names a fault configuration per experiment under FisConfigs/, and the consumer's "
            "FIS extension reads it there: the folder is the narrowest the FIS user guide gives.",
            lambda stack: [stack.experiments.role, stack.functions.consumer.role],
        ),
        Accepted(
            f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/reports/*]",
            "FIS names each experiment report itself under the template's report prefix; the "
            "drill policy reads them back there.",
            lambda stack: [stack.experiments.role, stack.experiments.drill_policy],
        ),
        Accepted(
            "AwsSolutions-IAM5[Resource::*]",
            "tag:GetResources (FIS's Lambda actions), cloudwatch:GetMetricWidgetImage (the "
            "experiment report), rds:DescribeEvents and cloudwatch:GetMetricData (the drill: "
            "the cluster's events, whether the consumer fault landed) have no resource-level "
            "permissions. rds:DescribeDBClusters and rds:DescribeDBInstances are read-only and on "
            "* as in AWS's managed AWSFaultInjectionSimulatorRDSAccess: FIS may call them without "
            "an identifier while it resolves targets. Every other statement names its resources; "
            "rds:FailoverDBCluster is on this cluster only.",
            lambda stack: [stack.experiments.role, stack.experiments.drill_policy],
        ),
        Accepted(
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:fis:{REGION}:<AWS::AccountId>"
            ":experiment/*]",
            "A drill gets, and stops, the experiment it started, whose id FIS makes at the start; "
            "it can start experiments from this stack's two templates only.",
            lambda stack: [stack.experiments.drill_policy],
        ),
    )


#: Only when the stack sets the account's API Gateway logging role (`api_gateway_account_role`).
ACCOUNT_LOGGING_ROLE = Accepted(
    f"AwsSolutions-IAM4[{_MANAGED}/AmazonAPIGatewayPushToCloudWatchLogs]",
    "The account-level role API Gateway needs to write execution logs; AWS's managed policy is "
    "the documented one for it.",
    lambda stack: [stack.api.api],
)


def accepted_for(stack: OrdersStack) -> tuple[Accepted, ...]:
    """The acknowledgments that apply to this stack's settings."""
    accepted = (*ACCEPTED, *experiments(stack))
    if stack.settings.api_gateway_account_role:
        accepted = (*accepted, ACCOUNT_LOGGING_ROLE)
    if stack.settings.deletion_protection:
        return accepted
    return (*accepted, DELETION_PROTECTION_OFF)


def acknowledge(stack: OrdersStack) -> None:
    for accepted in accepted_for(stack):
        for scope in accepted.where(stack):
            Validations.of(scope).acknowledge(
                Acknowledgment(id=accepted.id, reason=accepted.reason)
            )
