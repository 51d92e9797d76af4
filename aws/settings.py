"""The app's knobs, read from CDK context (``-c name=value``), with workshop defaults.

The queue's, the consumer's and the proxy's timings are `sandbox.spec.timings.AWS` (held to the
same rule as the local sandbox's, and not a context value: a change to them is a change to review,
with its test), and the consumer's event source is `sandbox.spec.event_source.RunnerSettings`;
these are only what has no local counterpart: how big the database is, which optional parts to
deploy, and how hard the stack is to delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Node

#: A CLOUDFRONT-scope WAF web ACL can only be created in us-east-1, and this app keeps the whole
#: architecture in one stack rather than splitting the ACL off into a cross-region stack.
REGION = "us-east-1"


@dataclass(frozen=True)
class AppSettings:
    """What a workshop may change at deploy time."""

    stack_name: str = "NearZeroRpo"
    #: Empty: Aurora Serverless v2 (cheap when idle). Else a provisioned class, e.g. "r6g.large".
    instance_class: str = ""
    min_acu: float = 0.5
    max_acu: float = 4.0
    deletion_protection: bool = False
    #: CloudFormation refuses to delete the stack while this is on, so a stray `make destroy`
    #: cannot take the functions, the API and the database down with it. A workshop that tears
    #: its stack down at the end deploys with `-c termination_protection=false`.
    termination_protection: bool = True
    #: The synchronous POST /direct/orders path, for comparing the two paths in a drill. On by
    #: default: idle, it costs nothing (a function and an API method); off removes both.
    direct_path: bool = True
    #: API Gateway writes its logs with one role per account and region. Off: the stack uses the
    #: role the account already has (`aws apigateway get-account`); on: the stack creates one and
    #: sets it, replacing the account's (CloudFormation keeps the role when the stack goes).
    api_gateway_account_role: bool = False
    #: Subscribed to the alarm topic when set.
    alarm_email: str = ""

    @property
    def serverless(self) -> bool:
        return not self.instance_class

    @classmethod
    def from_context(cls, node: Node) -> AppSettings:
        """Context values arrive as JSON from cdk.json but as strings from ``-c``: accept both."""
        defaults = cls()
        return cls(
            stack_name=_text(node.try_get_context("stack_name"), defaults.stack_name),
            instance_class=_text(node.try_get_context("instance_class"), defaults.instance_class),
            min_acu=float(node.try_get_context("min_acu") or defaults.min_acu),
            max_acu=float(node.try_get_context("max_acu") or defaults.max_acu),
            deletion_protection=_flag(
                node.try_get_context("deletion_protection"), defaults.deletion_protection
            ),
            termination_protection=_flag(
                node.try_get_context("termination_protection"), defaults.termination_protection
            ),
            direct_path=_flag(node.try_get_context("direct_path"), defaults.direct_path),
            api_gateway_account_role=_flag(
                node.try_get_context("api_gateway_account_role"), defaults.api_gateway_account_role
            ),
            alarm_email=_text(node.try_get_context("alarm_email"), defaults.alarm_email),
        )


def _text(value: Any, default: str) -> str:
    return default if value is None else str(value).strip()


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off", ""}:
        return False
    raise ValueError(f"not a true/false context value: {value!r}")
