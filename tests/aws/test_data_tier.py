"""Network, Aurora and RDS Proxy: the parts that carry the durability half of the pattern."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aws.stacks.database import BACKUP_DAYS, DB_NAME, ROTATION_DAYS


def test_vpc_spans_two_azs_without_nat_or_internet(synth) -> None:
    synth.template.resource_count_is("AWS::EC2::VPC", 1)
    synth.template.resource_count_is("AWS::EC2::Subnet", 2)
    synth.template.resource_count_is("AWS::EC2::NatGateway", 0)
    synth.template.resource_count_is("AWS::EC2::InternetGateway", 0)
    azs = [s["Properties"]["AvailabilityZone"] for s in synth.of_type("AWS::EC2::Subnet").values()]
    assert [az["Fn::Select"][0] for az in azs] == [0, 1]


def test_vpc_endpoints_for_what_the_functions_reach(synth) -> None:
    endpoints = [
        e["Properties"]
        for e in synth.of_type("AWS::EC2::VPCEndpoint").values()
        if e["Properties"]["VpcEndpointType"] == "Interface"  # S3's gateway one: test_fis.py
    ]
    services = sorted(endpoint["ServiceName"].rsplit(".", 1)[-1] for endpoint in endpoints)
    assert services == ["logs", "monitoring", "secretsmanager", "sqs"]  # and no Lambda endpoint
    for endpoint in endpoints:
        assert endpoint["PrivateDnsEnabled"] is True


def test_writer_and_reader_in_different_azs(synth) -> None:
    instances = synth.of_type("AWS::RDS::DBInstance").values()
    placed = {
        instance["Properties"]["PromotionTier"]: instance["Properties"]["AvailabilityZone"]
        for instance in instances
    }
    assert set(placed) == {0, 1}  # the writer, and a reader promoted first on failover
    assert placed[0]["Fn::Select"][0] != placed[1]["Fn::Select"][0]
    assert {i["Properties"]["DBInstanceClass"] for i in instances} == {"db.serverless"}


def test_cluster_is_encrypted_backed_up_and_serverless_by_default(synth) -> None:
    synth.template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "DatabaseName": DB_NAME,
            "StorageEncrypted": True,
            "BackupRetentionPeriod": BACKUP_DAYS,
            "DeletionProtection": synth.stack.settings.deletion_protection,
            "ServerlessV2ScalingConfiguration": {
                "MinCapacity": synth.stack.settings.min_acu,
                "MaxCapacity": synth.stack.settings.max_acu,
            },
        },
    )
    synth.template.has_resource(
        "AWS::RDS::DBCluster", {"DeletionPolicy": "Snapshot", "UpdateReplacePolicy": "Snapshot"}
    )


def test_secret_carries_the_database_name_and_rotates(synth) -> None:
    secret_id = synth.logical_id(synth.stack.database.secret)
    secret = synth.resources[secret_id]["Properties"]
    assert f'"dbname":"{DB_NAME}"' in secret["GenerateSecretString"]["SecretStringTemplate"]
    synth.template.has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {
            "SecretId": {"Ref": Match.string_like_regexp("SecretAttachment")},
            "RotationRules": {"ScheduleExpression": f"rate({ROTATION_DAYS} days)"},
            "RotateImmediatelyOnUpdate": False,  # would race the schema migration at deploy
        },
    )
    synth.template.has_resource_properties(
        "AWS::SecretsManager::SecretTargetAttachment",
        {"SecretId": {"Ref": secret_id}, "TargetType": "AWS::RDS::DBCluster"},
    )


def test_proxy_requires_tls_knows_only_the_application_role_and_targets_the_cluster(synth) -> None:
    """Its one secret is the application role's: nobody logs in as the master through it."""
    stack = synth.stack
    synth.template.has_resource_properties(
        "AWS::RDS::DBProxy",
        {
            "EngineFamily": "POSTGRESQL",
            "RequireTLS": True,
            "Auth": Match.exact(
                [
                    Match.object_like(
                        {
                            "AuthScheme": "SECRETS",
                            "IAMAuth": "DISABLED",
                            "SecretArn": {"Ref": synth.logical_id(stack.database.app_secret)},
                        }
                    )
                ]
            ),
        },
    )
    synth.template.has_resource_properties(
        "AWS::RDS::DBProxyTargetGroup",
        {
            "DBProxyName": {"Ref": synth.logical_id(stack.proxy.proxy)},
            "DBClusterIdentifiers": [{"Ref": synth.logical_id(stack.database.cluster)}],
        },
    )


def test_only_the_writing_functions_reach_the_proxy(synth) -> None:
    stack = synth.stack
    proxy_sg = synth.logical_id(stack.proxy.proxy.connections.security_groups[0])
    writers = [fn for fn in (stack.functions.consumer, stack.functions.direct) if fn is not None]
    expected = {synth.logical_id(fn.connections.security_groups[0]) for fn in writers}
    sources = {
        rule["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0]
        for rule in synth.of_type("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [proxy_sg, "GroupId"]}
    }
    assert sources == expected
    for rule in synth.of_type("AWS::EC2::SecurityGroupIngress").values():
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [proxy_sg, "GroupId"]}:
            assert rule["Properties"]["FromPort"] == rule["Properties"]["ToPort"] == 5432
