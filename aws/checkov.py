"""Every checkov finding this app accepts, with its reason, written beside the resource.

Checkov (``tests/aws/test_checkov.py``, in ``make test``) reads a skip from the resource's own
metadata, ``checkov: skip: [{id, comment}]``, so each reason below lands on the resources it is
about in the synthesized template, as cdk-nag's acknowledgments (`aws.nag`) are scoped to their
constructs. A failed check without one fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import CfnResource
from constructs import IConstruct

if TYPE_CHECKING:
    from aws.stacks.orders import OrdersStack

#: Where CDK puts the provider of `triggers.Trigger` (one per stack): a function of CDK's own.
TRIGGER_PROVIDER = "AWSCDK.TriggerCustomResourceProviderCustomResourceProvider"


@dataclass(frozen=True)
class Skip:
    """A checkov check (``CKV_AWS_...``), why it does not apply here, and where."""

    check: str
    reason: str
    where: Callable[[OrdersStack], Sequence[IConstruct]]


def _functions(stack: OrdersStack) -> list[IConstruct]:
    functions = stack.functions
    ours = [functions.producer, functions.consumer, functions.reconcile, functions.migrate]
    return ours if functions.direct is None else [*ours, functions.direct]


def _trigger_provider(stack: OrdersStack) -> list[IConstruct]:
    return [stack.node.find_child(TRIGGER_PROVIDER).node.find_child("Handler")]


SKIPS: tuple[Skip, ...] = (
    Skip(
        "CKV_AWS_115",
        "No reserved concurrency: it would carve capacity out of the account's pool (a new "
        "account has 10 in all, and Lambda keeps 10 unreserved). The consumer is capped by its "
        "event source's maximum concurrency, the API's functions by the stage's throttle, the "
        "admin functions are invoked one at a time.",
        lambda stack: [*_functions(stack), *_trigger_provider(stack)],
    ),
    Skip(
        "CKV_AWS_116",
        "No function is invoked asynchronously, so a Lambda DLQ would never receive anything: the "
        "API's are invoked by API Gateway and the admin ones by IAM callers and the CDK trigger, "
        "all synchronously; the consumer's failed messages go to the queue's own DLQ.",
        lambda stack: [*_functions(stack), *_trigger_provider(stack)],
    ),
    Skip(
        "CKV_AWS_173",
        "The variables hold no secret: a secret's ARN, the proxy's host and port, the queue's URL "
        "(and the FIS extension's settings). The credentials stay in Secrets Manager.",
        _functions,
    ),
    Skip(
        "CKV_AWS_117",
        "CDK's own provider for the migration trigger: it only calls the Lambda API to invoke "
        "the migrate function (which is in the VPC), and the VPC has no Lambda endpoint for it.",
        _trigger_provider,
    ),
    Skip(
        "CKV_AWS_120",
        "No API cache: both methods are POSTs that write an order, never served from a cache; a "
        "cache cluster would bill by the hour for nothing.",
        lambda stack: [stack.api.api.deployment_stage],
    ),
    Skip(
        "CKV_AWS_149",
        "Secrets Manager's own key (aws/secretsmanager): every reader already needs "
        "secretsmanager:GetSecretValue on this secret, and a customer-managed key would need "
        "grants for the proxy, the rotation functions and five functions that only an account "
        "could test.",
        lambda stack: [
            stack.database.secret,
            stack.database.app_secret,
            stack.api.origin_key_secret,
        ],
    ),
    Skip(
        "CKV_AWS_86",
        "No CloudFront access logs (they need an S3 bucket with ACLs): API Gateway's access log "
        "records every request that reaches the API, and WAF samples what it blocks (cdk-nag "
        "CFR3).",
        lambda stack: [stack.edge.distribution],
    ),
    Skip(
        "CKV_AWS_174",
        "The default *.cloudfront.net certificate, whose minimum TLS version CloudFront does not "
        "let us raise; a custom domain with an ACM certificate would (cdk-nag CFR4).",
        lambda stack: [stack.edge.distribution],
    ),
)


def skip(stack: OrdersStack) -> None:
    """Write each skip into its resources' metadata, after any skips already there."""
    for accepted in SKIPS:
        for construct in accepted.where(stack):
            resource = construct.node.default_child or construct
            if not isinstance(resource, CfnResource):
                raise TypeError(f"{construct.node.path}: not a CloudFormation resource")
            existing = resource.get_metadata("checkov") or {}
            skips = [*existing.get("skip", []), {"id": accepted.check, "comment": accepted.reason}]
            resource.add_metadata("checkov", {**existing, "skip": skips})
