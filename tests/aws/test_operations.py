"""What a drill watches and reads: alarms, the dashboard, the failover log, the admin functions and
the stack outputs."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from aws.stacks.monitoring import oldest_message_threshold_seconds
from sandbox.spec.timings import AWS

OUTPUTS = {
    "ApiUrl",
    "CloudFrontUrl",
    "UserPoolId",
    "UserPoolClientId",
    "QueueUrl",
    "QueueArn",
    "DlqUrl",
    "DlqArn",
    "ClusterId",
    "WriterEndpoint",
    "ReaderEndpoint",
    "ProxyEndpoint",
    "DbSecretArn",
    "AppSecretArn",
    "ProducerFunctionName",
    "ConsumerFunctionName",
    "ReconcileFunctionName",
    "AlarmTopicArn",
    "DashboardName",
    "FailoverLogGroup",
    "DirectPath",
}


def _alarm_on(synth, queue, **properties) -> None:
    topic = {"Ref": synth.logical_id(synth.stack.monitoring.topic)}
    synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "Dimensions": [
                {
                    "Name": "QueueName",
                    "Value": {"Fn::GetAtt": [synth.logical_id(queue), "QueueName"]},
                }
            ],
            "AlarmActions": [topic],
            **properties,
        },
    )


def test_alarm_when_a_message_reaches_the_dlq(synth) -> None:
    _alarm_on(
        synth,
        synth.stack.queues.dlq,
        MetricName="ApproximateNumberOfMessagesVisible",
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def test_alarm_when_the_oldest_message_is_too_old(synth) -> None:
    settings = AWS.queue
    threshold = oldest_message_threshold_seconds(settings)
    assert threshold == settings.visibility_timeout_seconds * settings.max_receive_count
    _alarm_on(
        synth,
        synth.stack.queues.queue,
        MetricName="ApproximateAgeOfOldestMessage",
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
    )


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(synth) -> None:
    key_id = synth.logical_id(synth.stack.monitoring.node.find_child("AlarmTopicKey"))
    synth.template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )
    synth.template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {
                                    "Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
                                },
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            }
                        )
                    ]
                )
            },
        },
    )


def test_failover_events_of_this_cluster_go_to_a_log_group_and_the_alarm_topic(synth) -> None:
    stack = synth.stack
    log_group = synth.logical_id(stack.monitoring.failover_log)
    rule = synth.resources[synth.logical_id(stack.monitoring.failover_rule)]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.rds"]
    assert pattern["detail"]["EventCategories"] == ["failover"]
    assert {"Ref": synth.logical_id(stack.database.cluster)} in pattern["detail"][
        "SourceIdentifier"
    ]
    log_target, topic_target = rule["Properties"]["Targets"]
    assert {"Ref": log_group} in log_target["Arn"]["Fn::Join"][1]
    topic = synth.logical_id(stack.monitoring.topic)
    assert topic_target["Arn"] == {"Ref": topic}
    synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Condition": {
                                    "ArnEquals": {
                                        "aws:SourceArn": {
                                            "Fn::GetAtt": [
                                                synth.logical_id(stack.monitoring.failover_rule),
                                                "Arn",
                                            ]
                                        }
                                    }
                                },
                            }
                        )
                    ]
                )
            },
        },
    )
    (policy,) = synth.of_type("AWS::Logs::ResourcePolicy").values()
    document = json.dumps(policy["Properties"]["PolicyDocument"])
    assert "events.amazonaws.com" in document
    assert log_group in document


def test_dashboard_shows_queue_functions_proxy_and_cluster(synth) -> None:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "Errors",
        "Throttles",
        "ClientConnections",
        "DatabaseConnections",
        "CPUUtilization",
        "AuroraReplicaLag",
        "CommitLatency",
    ):
        assert f'\\"{metric}\\"' in body, metric
    for role in ("WRITER", "READER"):
        assert f'\\"Role\\",\\"{role}\\"' in body, role


def test_reconcile_runs_in_the_vpc_and_has_no_public_endpoint(synth) -> None:
    functions = synth.stack.functions
    reconcile_id = synth.logical_id(functions.reconcile)
    reconcile = synth.resources[reconcile_id]["Properties"]
    assert reconcile["Handler"] == "reconcile.handler"
    assert reconcile["VpcConfig"]["SubnetIds"]
    synth.template.resource_count_is("AWS::Lambda::Url", 0)
    invoked_by = [
        permission["Properties"]["FunctionName"]
        for permission in synth.of_type("AWS::Lambda::Permission").values()
    ]
    assert {"Fn::GetAtt": [reconcile_id, "Arn"]} not in invoked_by


def test_the_migration_waits_for_what_it_reads(synth) -> None:
    """The trigger runs after the cluster's instances, the secret attachment that writes the host
    and port the migration reads, and the Secrets Manager endpoint it reads them through."""
    stack = synth.stack
    (trigger,) = synth.of_type("Custom::Trigger").values()
    after = set(trigger["DependsOn"])
    attachment_id = synth.logical_id(stack.database.cluster.secret)  # the master's: it logs in
    assert attachment_id in synth.of_type("AWS::SecretsManager::SecretTargetAttachment")
    instances = set(synth.of_type("AWS::RDS::DBInstance"))
    endpoint = synth.logical_id(stack.network.endpoints["SecretsManager"])
    assert {attachment_id, endpoint, synth.logical_id(stack.database.cluster)} | instances <= after


def test_schema_is_migrated_on_deploy(synth) -> None:
    migrate = synth.resources[synth.logical_id(synth.stack.functions.migrate)]["Properties"]
    assert migrate["Handler"] == "reconcile.migrate"
    synth.template.has_resource_properties(
        "Custom::Trigger",
        {"HandlerArn": {"Ref": Match.string_like_regexp("MigrateCurrentVersion")}},
    )


def test_outputs_name_everything_a_drill_needs(synth) -> None:
    outputs = synth.template.to_json()["Outputs"]
    assert set(outputs) >= OUTPUTS
    direct = synth.stack.functions.direct is not None
    assert outputs["DirectPath"]["Value"] == ("enabled" if direct else "disabled")
    assert ("DirectFunctionName" in outputs) is direct
