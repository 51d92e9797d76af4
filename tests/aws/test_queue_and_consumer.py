"""The write path's pattern: the queue and DLQ exactly as `QueueSettings` defines them, and the
consumer's event source and timeout derived from them."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Annotations, Match

from aws.stacks.functions import CONSUMER, PRODUCER
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings, function_timeout_for

SETTINGS = QueueSettings()


def test_queue_is_built_from_queue_settings(synth) -> None:
    stack = synth.stack
    dlq_id = synth.logical_id(stack.queues.dlq)
    queue = synth.resources[synth.logical_id(stack.queues.queue)]["Properties"]
    assert queue["FifoQueue"] is SETTINGS.fifo
    assert queue["ContentBasedDeduplication"] is SETTINGS.fifo
    assert queue["MessageRetentionPeriod"] == SETTINGS.retention_seconds
    assert queue["VisibilityTimeout"] == SETTINGS.visibility_timeout_seconds
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": SETTINGS.max_receive_count,
    }


def test_dlq_has_the_same_type_and_retention(synth) -> None:
    dlq = synth.resources[synth.logical_id(synth.stack.queues.dlq)]["Properties"]
    assert dlq["FifoQueue"] is SETTINGS.fifo
    assert dlq["MessageRetentionPeriod"] == SETTINGS.retention_seconds
    assert "RedrivePolicy" not in dlq


def test_queues_are_encrypted_and_refuse_plain_http(synth) -> None:
    for queue in synth.of_type("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    policies = synth.of_type("AWS::SQS::QueuePolicy").values()
    denies = [
        statement
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
    ]
    assert len(denies) == 2
    assert all(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


@pytest.mark.parametrize(
    ("visibility", "timeout"), [(1, 1), (5, 1), (6, 1), (11, 1), (12, 2), (30, 5), (61, 10)]
)
def test_consumer_timeout_keeps_the_advised_ratio_when_it_can(visibility, timeout) -> None:
    assert function_timeout_for(visibility) == timeout
    assert visibility >= 6 * timeout or timeout == 1


def test_consumer_timeout_is_derived_from_the_visibility_timeout(synth) -> None:
    consumer = synth.resources[synth.logical_id(synth.stack.functions.consumer)]["Properties"]
    assert consumer["Handler"] == CONSUMER
    assert consumer["Timeout"] == function_timeout_for(SETTINGS.visibility_timeout_seconds)


def test_the_default_queue_keeps_the_advised_ratio_so_synth_has_no_warning(synth) -> None:
    timeout = function_timeout_for(SETTINGS.visibility_timeout_seconds)
    assert SETTINGS.visibility_timeout_seconds >= 6 * timeout
    assert RunnerSettings().function_timeout_seconds == timeout  # the local runner's default too
    warnings = Annotations.from_stack(synth.stack).find_warning(
        "*", Match.string_like_regexp("visibility timeout .* AWS advises")
    )
    assert warnings == []


def test_event_source_reports_batch_item_failures_with_bounded_concurrency(synth) -> None:
    runner = RunnerSettings()
    stack = synth.stack
    synth.template.resource_properties_count_is("AWS::Lambda::EventSourceMapping", {}, 1)
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [synth.logical_id(stack.queues.queue), "Arn"]},
            "FunctionName": {"Ref": synth.logical_id(stack.functions.consumer)},
            "BatchSize": runner.batch_size,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": runner.concurrency},
            # Lambda refuses a batching window on a FIFO queue.
            "MaximumBatchingWindowInSeconds": Match.absent()
            if SETTINGS.fifo or not runner.batching_window_seconds
            else runner.batching_window_seconds,
        },
    )


def test_consumer_environment_is_exactly_what_it_reads(synth) -> None:
    stack = synth.stack
    consumer = synth.resources[synth.logical_id(stack.functions.consumer)]["Properties"]
    assert consumer["Environment"]["Variables"] == {
        "DB_SECRET_ID": {"Ref": synth.logical_id(stack.database.secret)},
        "DB_PROXY_HOST": {"Fn::GetAtt": [synth.logical_id(stack.proxy.proxy), "Endpoint"]},
        "DB_PROXY_PORT": "5432",
        "DB_SSLMODE": "require",
    }


def test_producer_sends_to_the_queue(synth) -> None:
    stack = synth.stack
    producer_id = synth.logical_id(stack.functions.producer)
    producer = synth.resources[producer_id]["Properties"]
    assert producer["Handler"] == PRODUCER
    assert producer["Environment"]["Variables"] == {
        "QUEUE_URL": {"Ref": synth.logical_id(stack.queues.queue)}
    }
    synth.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": Match.string_like_regexp("Producer")}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": Match.array_with(["sqs:SendMessage"]),
                                "Resource": {
                                    "Fn::GetAtt": [synth.logical_id(stack.queues.queue), "Arn"]
                                },
                            }
                        )
                    ]
                )
            },
        },
    )
