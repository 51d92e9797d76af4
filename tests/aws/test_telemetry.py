"""What an operator sees of Aurora: Performance Insights, enhanced monitoring, the PostgreSQL log in
CloudWatch Logs, and an explicit parameter group that forces TLS; and every log group on the
stack's log key."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aws.stacks.database import CLUSTER_PARAMETERS, LOG_EXPORTS, MONITORING_INTERVAL
from aws.stacks.logs import KEY_ID


def test_cluster_parameter_group_is_explicit_and_forces_tls(synth) -> None:
    database = synth.stack.database
    group_id = synth.logical_id(database.parameter_group)
    group = synth.resources[group_id]
    assert group["Type"] == "AWS::RDS::DBClusterParameterGroup"
    assert group["Properties"]["Parameters"] == CLUSTER_PARAMETERS == {"rds.force_ssl": "1"}
    cluster = synth.resources[synth.logical_id(database.cluster)]["Properties"]
    assert cluster["DBClusterParameterGroupName"] == {"Ref": group_id}


def test_postgresql_log_is_exported_to_a_log_group_made_first(synth) -> None:
    database = synth.stack.database
    cluster_id = synth.logical_id(database.cluster)
    cluster = synth.resources[cluster_id]
    assert cluster["Properties"]["EnableCloudwatchLogsExports"] == LOG_EXPORTS == ["postgresql"]
    name = database.cluster_identifier
    assert cluster["Properties"]["DBClusterIdentifier"] == name == "nearzerorpo-aurora"
    log_id = synth.logical_id(database.postgresql_log)
    log = synth.resources[log_id]["Properties"]
    assert log["LogGroupName"] == f"/aws/rds/cluster/{name}/postgresql"
    assert log["RetentionInDays"] == 14
    assert log_id in cluster["DependsOn"]


def test_performance_insights_on_the_cluster_enhanced_monitoring_on_every_instance(synth) -> None:
    database = synth.stack.database
    # Performance Insights set on the cluster, which Aurora applies to every instance in it.
    cluster = synth.resources[synth.logical_id(database.cluster)]["Properties"]
    assert cluster["PerformanceInsightsEnabled"] is True
    assert cluster["PerformanceInsightsRetentionPeriod"] == 7  # the free tier
    role_id = synth.logical_id(database.monitoring_role)
    instances = synth.of_type("AWS::RDS::DBInstance").values()
    assert len(instances) == 2
    for instance in instances:
        props = instance["Properties"]
        assert props["MonitoringInterval"] == MONITORING_INTERVAL.to_seconds() == 60
        assert props["MonitoringRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    synth.template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like({"Principal": {"Service": "monitoring.rds.amazonaws.com"}})
                ]
            },
            "ManagedPolicyArns": [
                {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
                        ],
                    ]
                }
            ],
        },
    )


def test_every_log_group_is_on_the_stacks_log_key(synth) -> None:
    key_id = synth.logical_id(synth.stack.node.find_child(KEY_ID))
    groups = synth.of_type("AWS::Logs::LogGroup")
    assert len(groups) >= 9
    for group_id, group in groups.items():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}, group_id
    key = synth.resources[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    (logs_statement,) = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "logs.us-east-1.amazonaws.com"}
    ]
    (context,) = logs_statement["Condition"]["ArnLike"].values()
    assert context["Fn::Join"][1][-1] == ":log-group:*"
