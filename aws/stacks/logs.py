"""Every log group the stack makes, made one way: a retention, deleted with the stack, and
encrypted with the stack's one log key (a customer-managed KMS key that CloudWatch Logs may use for
this account's log groups only).

The log groups hold order ids, error messages, caller IPs and Cognito user ids. CloudWatch Logs
encrypts all of them at rest anyway; the key makes reading them need two grants, the logs' and the
key's, and lets a team cut access to every log of the stack in one place. It costs $1 a month.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

KEY_ID = "LogsKey"


def log_group(
    scope: Construct,
    construct_id: str,
    *,
    retention: logs.RetentionDays = logs.RetentionDays.TWO_WEEKS,
    name: str | None = None,
) -> logs.LogGroup:
    """A log group of this stack, on the stack's log key."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=retention,
        removal_policy=RemovalPolicy.DESTROY,
        encryption_key=_key(Stack.of(scope)),
    )


def _key(stack: Stack) -> kms.Key:
    """The stack's log key, made the first time a log group asks for it."""
    existing = stack.node.try_find_child(KEY_ID)
    if isinstance(existing, kms.Key):
        return existing
    key = kms.Key(
        stack,
        KEY_ID,
        description="Encrypts the stack's CloudWatch Logs log groups",
        enable_key_rotation=True,
        # The log groups go with the stack; the key after them, once no log is left to read.
        removal_policy=RemovalPolicy.DESTROY,
        pending_window=Duration.days(7),
    )
    # CloudWatch Logs' documented key policy: the regional service principal, for log groups of
    # this account and region only (the encryption context names the log group).
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
    return key
