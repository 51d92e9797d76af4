"""No master-user logins for the functions: the application role's own secret, attached to the
cluster and rotated by the single-user rotation, is the only one the proxy holds and the only one
the consumer, the direct path and reconcile may read; the master's is the migration's alone."""

from __future__ import annotations

from typing import Any

from aws.stacks.database import APP_USER, DB_NAME, DB_USER, ROTATION_DAYS

SINGLE_USER = "applications/SecretsManagerRDSPostgreSQLRotationSingleUser"


def readers_of(synth, secret: Any) -> set[str]:
    """The roles whose policies allow reading ``secret``'s value: named by its own reference,
    by an attachment's (whose Ref is the secret's ARN too), or by a wildcard."""
    ref = {"Ref": synth.logical_id(secret)}
    names = [ref, "*"] + [
        {"Ref": logical_id}
        for logical_id, attachment in synth.of_type(
            "AWS::SecretsManager::SecretTargetAttachment"
        ).items()
        if attachment["Properties"]["SecretId"] == ref
    ]
    return {
        role["Ref"]
        for policy in synth.of_type("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if {"secretsmanager:GetSecretValue", "secretsmanager:*", "*"}
        & set(_listed(statement["Action"]))
        and any(name in _listed(statement["Resource"]) for name in names)
        for role in policy["Properties"]["Roles"]
    }


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_of(synth, construct: Any) -> str:
    return synth.logical_id(construct.role)


def test_the_application_secret_is_its_own_and_names_the_role_and_database(synth) -> None:
    database = synth.stack.database
    secret = synth.resources[synth.logical_id(database.app_secret)]["Properties"]
    template = secret["GenerateSecretString"]["SecretStringTemplate"]
    assert f'"username":"{APP_USER}"' in template and f'"dbname":"{DB_NAME}"' in template
    assert APP_USER != DB_USER and "masterarn" not in template  # no key to the master's
    synth.template.has_resource_properties(
        "AWS::SecretsManager::SecretTargetAttachment",
        {
            "SecretId": {"Ref": synth.logical_id(database.app_secret)},
            "TargetId": {"Ref": synth.logical_id(database.cluster)},
            "TargetType": "AWS::RDS::DBCluster",
        },
    )


def test_the_application_secret_rotates_with_the_postgresql_single_user_function(synth) -> None:
    database = synth.stack.database
    attachment = synth.logical_id(database.app_attachment)
    (schedule,) = [
        s["Properties"]
        for s in synth.of_type("AWS::SecretsManager::RotationSchedule").values()
        if s["Properties"]["SecretId"] == {"Ref": attachment}
    ]
    assert schedule["RotationRules"] == {"ScheduleExpression": f"rate({ROTATION_DAYS} days)"}
    assert schedule["RotateImmediatelyOnUpdate"] is False  # the role exists after the migration
    application_id, _ = schedule["RotationLambdaARN"]["Fn::GetAtt"]
    application = synth.resources[application_id]
    mapping, _, _ = application["Properties"]["Location"]["ApplicationId"]["Fn::FindInMap"]
    assert synth.template.to_json()["Mappings"][mapping]["aws"]["applicationId"].endswith(
        SINGLE_USER
    )
    parameters = application["Properties"]["Parameters"]
    subnets = [s["Ref"] for s in parameters["vpcSubnetIds"]["Fn::Join"][1] if isinstance(s, dict)]
    assert subnets == [synth.logical_id(s) for s in synth.stack.network.vpc.isolated_subnets]
    # It connects to the cluster as the role itself (to change its own password).
    rotation_group = parameters["vpcSecurityGroupIds"]["Fn::GetAtt"][0]
    cluster_group = synth.logical_id(database.cluster.connections.security_groups[0])
    assert any(
        rule["Properties"]["GroupId"] == {"Fn::GetAtt": [cluster_group, "GroupId"]}
        and rule["Properties"]["SourceSecurityGroupId"]
        == {"Fn::GetAtt": [rotation_group, "GroupId"]}
        for rule in synth.of_type("AWS::EC2::SecurityGroupIngress").values()
    )


def test_each_function_reads_the_secret_of_the_login_it_needs(synth) -> None:
    stack = synth.stack
    functions, database = stack.functions, stack.database
    app = {"Ref": synth.logical_id(database.app_secret)}
    users = [functions.consumer, functions.reconcile, functions.direct]
    for function in filter(None, users):  # direct: unless -c direct_path=false
        variables = synth.resources[synth.logical_id(function)]["Properties"]["Environment"]
        assert variables["Variables"]["DB_SECRET_ID"] == app, function.node.id
    migrate = synth.resources[synth.logical_id(functions.migrate)]["Properties"]
    assert migrate["Environment"]["Variables"] == {
        "DB_SECRET_ID": {"Ref": synth.logical_id(database.secret)},
        "APP_SECRET_ID": app,
    }


def test_only_the_migration_may_read_the_master_secret(synth) -> None:
    stack = synth.stack
    functions = stack.functions
    assert readers_of(synth, stack.database.secret) == {role_of(synth, functions.migrate)}
    app_readers = {functions.consumer, functions.reconcile, functions.migrate, functions.direct}
    assert readers_of(synth, stack.database.app_secret) == {
        role_of(synth, f) for f in app_readers if f is not None
    } | {synth.logical_id(stack.proxy.proxy.node.find_child("IAMRole"))}
