"""The write path's pattern: the queue and DLQ as the deployed `QueueSettings` define them, kept
when the stack goes, encrypted with a key of their own, and the consumer's event source."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aws.stacks.functions import PRODUCER
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.timings import AWS

SETTINGS = AWS.queue


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


def _stack_guid_name(name: dict) -> str:
    """``orders-<stack guid>.fifo`` as CloudFormation joins it: the guid part is the third
    '/'-separated field of AWS::StackId."""
    parts = name["Fn::Join"][1]
    guid = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    assert parts[1] == guid
    return f"{parts[0]}<guid>{parts[2]}"


def test_queue_names_end_in_the_stack_guid(synth) -> None:
    stack = synth.stack
    queue = synth.resources[synth.logical_id(stack.queues.queue)]["Properties"]
    dlq = synth.resources[synth.logical_id(stack.queues.dlq)]["Properties"]
    assert _stack_guid_name(queue["QueueName"]) == "orders-<guid>.fifo"
    assert _stack_guid_name(dlq["QueueName"]) == "orders-dlq-<guid>.fifo"


def test_only_the_orders_queue_may_use_the_dlq(synth) -> None:
    dlq = synth.resources[synth.logical_id(synth.stack.queues.dlq)]["Properties"]
    policy = dlq["RedriveAllowPolicy"]
    assert policy["redrivePermission"] == "byQueue"
    (source,) = policy["sourceQueueArns"]
    arn = source["Fn::Join"][1]  # arn:<partition>:sqs:<region>:<account>:orders-<guid>.fifo
    assert ":sqs:" in arn[2]
    queue = synth.resources[synth.logical_id(synth.stack.queues.queue)]["Properties"]
    name = queue["QueueName"]["Fn::Join"][1]  # orders-, <guid>, .fifo
    assert arn[-3] == f":{name[0]}" and arn[-2:] == name[1:]


def test_queues_and_their_key_are_kept_when_the_stack_goes(synth) -> None:
    stack = synth.stack
    for construct in (stack.queues.queue, stack.queues.dlq, stack.queues.key):
        resource = synth.resources[synth.logical_id(construct)]
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def test_queues_are_encrypted_with_a_rotated_key_and_refuse_plain_http(synth) -> None:
    key_id = synth.logical_id(synth.stack.queues.key)
    assert synth.resources[key_id]["Properties"]["EnableKeyRotation"] is True
    for queue in synth.of_type("AWS::SQS::Queue").values():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert "SqsManagedSseEnabled" not in queue["Properties"]
    policies = synth.of_type("AWS::SQS::QueuePolicy").values()
    denies = [
        statement
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
    ]
    assert len(denies) == 2
    assert all(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_stack_is_termination_protected_by_default(synth) -> None:
    assert synth.stack.termination_protection is True


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
    # Less the FIS extension's, which its wrapper reads, not the handler (tests/aws/test_fis.py).
    variables = consumer["Environment"]["Variables"]
    fis = ("AWS_FIS_", "AWS_LAMBDA_EXEC_WRAPPER")
    assert {k: v for k, v in variables.items() if not k.startswith(fis)} == {
        "DB_SECRET_ID": {"Ref": synth.logical_id(stack.database.app_secret)},
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
                                "Action": "sqs:SendMessage",
                                "Resource": {
                                    "Fn::GetAtt": [synth.logical_id(stack.queues.queue), "Arn"]
                                },
                            }
                        ),
                        Match.object_like(
                            {
                                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                                "Resource": {
                                    "Fn::GetAtt": [synth.logical_id(stack.queues.key), "Arn"]
                                },
                            }
                        ),
                    ]
                )
            },
        },
    )
