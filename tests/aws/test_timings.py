"""Two sets of timings, one rule: the local drills' and the deployed stack's, both held to
`Timings.problems`, and the stack built from the deployed set (and refusing one that breaks it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from aws_cdk import App

from aws.settings import AppSettings
from aws.stacks.orders import OrdersStack
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings
from sandbox.spec.timings import AURORA_FAILOVER_SECONDS, AWS, FAILOVER_MULTIPLE, LOCAL, Timings


@pytest.mark.parametrize("timings", [LOCAL, AWS], ids=["local", "aws"])
def test_both_sets_keep_the_rule(timings: Timings) -> None:
    assert timings.problems() == []
    assert timings.retry_budget_seconds >= FAILOVER_MULTIPLE * AURORA_FAILOVER_SECONDS


def test_the_local_set_is_what_the_local_sandbox_runs() -> None:
    assert LOCAL.queue == QueueSettings()
    assert LOCAL.function_timeout_seconds == RunnerSettings().function_timeout_seconds
    assert (LOCAL.queue.visibility_timeout_seconds, LOCAL.function_timeout_seconds) == (6, 1)
    assert LOCAL.retry_budget_seconds == 150


def test_the_aws_set_is_sized_for_a_real_failover() -> None:
    assert 30 <= AWS.queue.visibility_timeout_seconds <= 60
    assert 5 <= AWS.function_timeout_seconds <= 10
    assert AWS.queue.visibility_timeout_seconds >= AURORA_FAILOVER_SECONDS
    assert AWS.retry_budget_seconds == 600
    assert AWS.proxy_borrow_timeout_seconds is not None
    assert AWS.queue.fifo and AWS.queue.retention_seconds == QueueSettings().retention_seconds


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"function_timeout_seconds": 11}, "under 6x the function timeout 11 s"),
        ({"queue": QueueSettings(visibility_timeout_seconds=60, max_receive_count=1)}, "budget"),
        ({"proxy_borrow_timeout_seconds": 10}, "borrow timeout 10 s is not under"),
    ],
)
def test_the_rule_names_each_breach(change: dict, complaint: str) -> None:
    (problem,) = dataclasses.replace(AWS, **change).problems()
    assert problem.startswith("aws: ") and complaint in problem


def test_the_stack_refuses_timings_that_break_the_rule() -> None:
    bad = dataclasses.replace(AWS, proxy_borrow_timeout_seconds=30)
    with pytest.raises(ValueError, match="borrow timeout 30 s is not under"):
        OrdersStack(App(), "Bad", settings=AppSettings(), timings=bad, runner=RunnerSettings())


def test_the_stack_deploys_the_aws_set(synth) -> None:
    stack = synth.stack
    queue = synth.resources[synth.logical_id(stack.queues.queue)]["Properties"]
    assert queue["VisibilityTimeout"] == AWS.queue.visibility_timeout_seconds
    assert queue["RedrivePolicy"]["maxReceiveCount"] == AWS.queue.max_receive_count
    consumer = synth.resources[synth.logical_id(stack.functions.consumer)]["Properties"]
    assert consumer["Timeout"] == AWS.function_timeout_seconds
    synth.template.has_resource_properties(
        "AWS::RDS::DBProxyTargetGroup",
        {
            "ConnectionPoolConfigurationInfo": {
                "ConnectionBorrowTimeout": AWS.proxy_borrow_timeout_seconds
            }
        },
    )


def test_aws_readme_states_both_sets_as_they_are() -> None:
    """aws/README's table of the two sets: each row as the spec has it."""
    readme = (Path(__file__).resolve().parents[2] / "aws" / "README.md").read_text()
    times = "\u00d7"  # the table's multiplication sign
    budget = f"retry budget (\u2265 {FAILOVER_MULTIPLE} {times} {AURORA_FAILOVER_SECONDS} s)"
    for row in (
        f"| visibility timeout | {LOCAL.queue.visibility_timeout_seconds} s "
        f"| {AWS.queue.visibility_timeout_seconds} s |",
        f"| consumer timeout | {LOCAL.function_timeout_seconds:g} s (Lambda's shortest) "
        f"| {AWS.function_timeout_seconds:g} s |",
        f"| `maxReceiveCount` | {LOCAL.queue.max_receive_count} | {AWS.queue.max_receive_count} |",
        f"| {budget} | {LOCAL.retry_budget_seconds} s | {AWS.retry_budget_seconds} s |",
    ):
        assert row in readme, row
    assert LOCAL.proxy_borrow_timeout_seconds is None
    assert (
        f"the runner's 1 s ends the invocation first | {AWS.proxy_borrow_timeout_seconds} s |"
        in (readme)
    )
