"""The CDK app synthesized once for the whole session, with its default context, as `make synth`
does: every test here reads the same template, cloud assembly and cdk-nag report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# First-party import first on purpose: importing `aws` sets the jsii environment before aws_cdk
# starts its runtime, which is also why aws_cdk.assertions is only imported inside the fixture.
from aws.stacks.orders import OrdersStack, create_app

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.aws)


@dataclass(frozen=True)
class Synthesized:
    stack: OrdersStack
    template: Any  # aws_cdk.assertions.Template
    outdir: Path

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.to_json()["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def logical_id(self, construct: Any) -> str:
        """The logical id of a construct's CloudFormation resource (an L2's, or an L1 itself)."""
        return self.stack.get_logical_id(construct.node.default_child or construct)

    def asset_dir(self, code: dict[str, Any]) -> Path:
        """The staged directory behind a Code/Content property (``<hash>.zip``)."""
        return self.outdir / f"asset.{code['S3Key'].removesuffix('.zip')}"

    def report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text())


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from aws_cdk.assertions import Template

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = create_app(outdir=str(outdir))
    stack = next(child for child in app.node.children if isinstance(child, OrdersStack))
    assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
    template = Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)
    return Synthesized(stack=stack, template=template, outdir=outdir)
