"""The one setting that reaches past the stack: with ``api_gateway_account_role``, the stack sets
the account's API Gateway logging role (and keeps it when the stack goes), and cdk-nag still
passes with that setting's own acknowledgment."""

from __future__ import annotations

import pytest

from aws import nag
from aws.stacks.orders import OrdersStack, create_app


@pytest.fixture(scope="module")
def with_account_role(tmp_path_factory: pytest.TempPathFactory):
    from aws_cdk.assertions import Template

    app = create_app(
        context={"api_gateway_account_role": "true"},
        outdir=str(tmp_path_factory.mktemp("cdk.account-role")),
    )
    stack = next(child for child in app.node.children if isinstance(child, OrdersStack))
    assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
    template = Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)
    return stack, template


def test_the_stack_sets_and_retains_the_account_role_when_asked(with_account_role) -> None:
    _, template = with_account_role
    template.resource_count_is("AWS::ApiGateway::Account", 1)
    (account,) = template.find_resources("AWS::ApiGateway::Account").values()
    assert account["DeletionPolicy"] == "Retain"


def test_its_managed_policy_is_acknowledged_only_then(with_account_role) -> None:
    stack, _ = with_account_role
    assert nag.ACCOUNT_LOGGING_ROLE in nag.accepted_for(stack)
