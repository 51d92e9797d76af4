"""A deployed stack's CloudFormation outputs: the only way the AWS drill learns where things are.

The output names are the ones ``aws/stacks/orders.py`` declares; a missing one means the stack is
not this project's, or is older than this drill, and the drill stops before it sends anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

#: Field -> output name (``aws/stacks/orders.py``, ``OrdersStack._outputs``).
OUTPUT_NAMES = {
    "cloudfront_url": "CloudFrontUrl",
    "user_pool_id": "UserPoolId",
    "user_pool_client_id": "UserPoolClientId",
    "queue_url": "QueueUrl",
    "queue_arn": "QueueArn",
    "dlq_url": "DlqUrl",
    "dlq_arn": "DlqArn",
    "cluster_id": "ClusterId",
    "reconcile_function": "ReconcileFunctionName",
    "consumer_function": "ConsumerFunctionName",  # whose log says why a message failed
    # The FIS experiment templates a drill starts (``aws/stacks/fis.py``).
    "failover_template": "FailoverExperimentTemplateId",
    "consumer_fault_template": "ConsumerFaultExperimentTemplateId",
}
#: A stack in any other state is being changed, or failed: not something to drill.
READY = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")


@dataclass(frozen=True)
class StackOutputs:
    """What the drill reads from the stack, and nothing else."""

    cloudfront_url: str
    user_pool_id: str
    user_pool_client_id: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    cluster_id: str
    reconcile_function: str
    consumer_function: str
    failover_template: str
    consumer_fault_template: str
    direct_path: bool

    @classmethod
    def parse(cls, outputs: list[dict[str, str]]) -> StackOutputs:
        values = {output["OutputKey"]: output["OutputValue"] for output in outputs}
        wanted = [*OUTPUT_NAMES.values(), "DirectPath"]
        missing = [name for name in wanted if name not in values]
        if missing:
            raise ValueError(
                f"the stack has no output {', '.join(missing)}: deploy this project's aws/ app"
            )
        named = {field: values[output] for field, output in OUTPUT_NAMES.items()}
        return cls(**named, direct_path=values["DirectPath"] == "enabled")


def read_outputs(cloudformation: Any, stack: str) -> StackOutputs:
    """``describe_stacks`` for one stack, refusing one that is missing or mid-change.

    No credentials, no network or a refusal all end here, as one line naming the stack: it is the
    first AWS call of a drill or of the AWS dashboard.
    """
    try:
        (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        raise RuntimeError(f"cannot read stack {stack}: {error}") from None
    status = described["StackStatus"]
    if status not in READY:
        raise RuntimeError(f"stack {stack} is {status}: drill a stack that is deployed and idle")
    return StackOutputs.parse(described.get("Outputs", []))
