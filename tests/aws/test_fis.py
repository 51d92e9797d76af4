"""The drill's FIS experiments as synthesized: each template's one action on one resource named by
ARN, its stop conditions and report, the experiment role and the drill policy scoped to this
stack, and what the consumer needs for FIS's Lambda actions inside an isolated VPC."""

from __future__ import annotations

from typing import Any

import pytest

from aws.stacks import fis
from sandbox.drills.targets import aws as aws_target
from sandbox.drills.targets.outputs import OUTPUT_NAMES


def _props(synth, construct: Any) -> dict[str, Any]:
    return synth.resources[synth.logical_id(construct)]["Properties"]


def _arn(synth, construct: Any) -> dict[str, Any]:
    return {"Fn::GetAtt": [synth.logical_id(construct), "Arn"]}


def _statements(document: dict[str, Any]) -> dict[str, Any]:
    """Action(s) -> Resource, one entry per statement, actions as a sorted tuple."""
    found = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        found[tuple(sorted([actions] if isinstance(actions, str) else actions))] = statement
    return found


def _mentions(value: Any, text: str) -> bool:
    return text in repr(value)


def test_the_writer_failover_is_fis_failover_db_cluster_on_this_cluster(synth) -> None:
    stack = synth.stack
    template = _props(synth, stack.experiments.failover)
    assert template["Actions"] == {
        "FailoverWriter": {
            "ActionId": "aws:rds:failover-db-cluster",
            "Targets": {"Clusters": "Cluster"},
        }
    }
    (target,) = template["Targets"].values()
    assert target["ResourceType"] == "aws:rds:cluster"
    assert target["SelectionMode"] == "ALL"
    (cluster_arn,) = target["ResourceArns"]  # by ARN: no tag lookup can select another cluster
    assert _mentions(cluster_arn, f"'Ref': '{synth.logical_id(stack.database.cluster)}'")
    assert _mentions(cluster_arn, ":cluster:")


def test_the_consumer_fault_fails_invocations_after_they_ran(synth) -> None:
    stack = synth.stack
    template = _props(synth, stack.experiments.consumer_fault)
    assert template["Actions"] == {
        "FailConsumerInvocations": {
            "ActionId": "aws:lambda:invocation-error",
            "Parameters": {
                "duration": f"PT{fis.CONSUMER_FAULT_SECONDS}S",
                "invocationPercentage": "100",
                "preventExecution": "false",  # the batch commits, then its invocation fails
            },
            "Targets": {"Functions": "Consumer"},
        }
    }
    assert template["Targets"] == {
        "Consumer": {
            "ResourceType": "aws:lambda:function",
            "ResourceArns": [_arn(synth, stack.functions.consumer)],
            "SelectionMode": "ALL",
        }
    }


def test_the_consumer_fault_stays_well_inside_the_queues_retry_budget(synth) -> None:
    """Every receive during the fault fails: it must end long before any order could run out of
    receives, or the drill would measure the fault's length, not the consumer's recovery."""
    settings = synth.stack.queues.settings
    budget = settings.visibility_timeout_seconds * settings.max_receive_count
    assert budget >= 2 * fis.CONSUMER_FAULT_SECONDS


def test_the_held_traffic_meets_the_fault_for_two_visibility_timeouts(synth) -> None:
    """After the drill's ramp-up the fault lasts two visibility timeouts: a batch it fails comes
    back, and fails again, inside it."""
    visibility = synth.stack.queues.settings.visibility_timeout_seconds
    assert aws_target.RAMP_UP_SECONDS + 2 * visibility <= fis.CONSUMER_FAULT_SECONDS
    assert aws_target.EXPERIMENT_TIMEOUT_SECONDS > fis.CONSUMER_FAULT_SECONDS  # a bound, not a cut


@pytest.mark.parametrize("which", ["failover", "consumer_fault"])
def test_each_template_stops_on_the_dlq_and_on_what_customers_see(synth, which) -> None:
    """An order in the DLQ; the API answering 5XX for longer than a failover; orders that stop
    committing."""
    stack = synth.stack
    monitoring = stack.monitoring
    api_errors = monitoring.node.find_child("ApiServerErrors")
    template = _props(synth, getattr(stack.experiments, which))
    assert template["StopConditions"] == [
        {"Source": "aws:cloudwatch:alarm", "Value": _arn(synth, alarm)}
        for alarm in (monitoring.dlq_alarm, api_errors, monitoring.oldest_alarm)
    ]
    api_alarm = synth.resources[synth.logical_id(api_errors)]["Properties"]
    assert api_alarm["MetricName"] == "5XXError"
    assert template["RoleArn"] == _arn(synth, stack.experiments.role)


@pytest.mark.parametrize(
    ("which", "prefix"),
    [("failover", "reports/writer-failover"), ("consumer_fault", "reports/consumer-fault")],
)
def test_each_template_reports_to_the_bucket_with_the_dashboard(synth, which, prefix) -> None:
    stack = synth.stack
    report = _props(synth, getattr(stack.experiments, which))["ExperimentReportConfiguration"]
    assert report["Outputs"] == {
        "ExperimentReportS3Configuration": {
            "BucketName": {"Ref": synth.logical_id(stack.experiments.bucket)},
            "Prefix": prefix,
        }
    }
    (dashboard,) = report["DataSources"]["CloudWatchDashboards"]
    # The dashboard's ARN ends in its name (CDK's dashboard_arn would leave it out).
    assert _mentions(dashboard["DashboardIdentifier"], ":dashboard/")
    assert _mentions(
        dashboard["DashboardIdentifier"], f"'Ref': '{synth.logical_id(stack.monitoring.dashboard)}'"
    )
    assert report["PreExperimentDuration"] == report["PostExperimentDuration"] == "PT5M"


def test_only_fis_experiments_of_this_account_assume_the_experiment_role(synth) -> None:
    role = _props(synth, synth.stack.experiments.role)
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "fis.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    assert _mentions(statement["Condition"]["ArnLike"]["aws:SourceArn"], ":experiment/*")


def test_the_experiment_role_may_touch_this_cluster_consumer_and_bucket_only(synth) -> None:
    stack = synth.stack
    (policy,) = [
        p["Properties"]
        for p in synth.of_type("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": synth.logical_id(stack.experiments.role)}]
    ]
    found = _statements(policy["PolicyDocument"])
    # The one call that changes anything is on this cluster only.
    cluster = found[("rds:FailoverDBCluster",)]["Resource"]
    assert _mentions(cluster, f"'Ref': '{synth.logical_id(stack.database.cluster)}'")
    assert _mentions(cluster, ":cluster:")
    failover = [a for actions in found for a in actions if a.startswith("rds:Failover")]
    assert failover == ["rds:FailoverDBCluster"]
    assert found[("lambda:GetFunction",)]["Resource"] == _arn(synth, stack.functions.consumer)
    assert _mentions(found[("s3:DeleteObject", "s3:PutObject")]["Resource"], "/FisConfigs/*")
    assert _mentions(found[("s3:GetObject", "s3:PutObject")]["Resource"], "/reports/*")
    # The only wildcards: calls with no resource-level permissions.
    unscoped = {actions for actions, s in found.items() if s["Resource"] == "*"}
    assert unscoped == {
        ("tag:GetResources",),
        ("cloudwatch:GetMetricWidgetImage",),
        # Read-only, as in AWSFaultInjectionSimulatorRDSAccess: FIS may describe without an
        # identifier while it resolves targets, which a grant on the cluster would refuse.
        ("rds:DescribeDBClusters", "rds:DescribeDBInstances"),
    }
    # Nothing on "*" can change a resource.
    assert all(a.split(":")[1].startswith(("Describe", "Get")) for acts in unscoped for a in acts)


def test_the_consumer_carries_the_fis_extension_and_its_configuration(synth) -> None:
    stack = synth.stack
    consumer = _props(synth, stack.functions.consumer)
    parameters = synth.template.to_json()["Parameters"]
    (layer_parameter,) = [
        name
        for name, parameter in parameters.items()
        if parameter["Default"] == fis.EXTENSION_PARAMETER.format("x86_64")
    ]
    assert parameters[layer_parameter]["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert {"Ref": layer_parameter} in consumer["Layers"]
    variables = consumer["Environment"]["Variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/aws-fis/bootstrap"
    assert variables["AWS_FIS_SLOW_POLL_INTERVAL_SECONDS"] == str(fis.SLOW_POLL_SECONDS)
    # An invocation waits for a poll in flight (the default, 0, never does: the fault then starts
    # only in a later invocation), within the consumer's timeout with room for its batch.
    wait = int(variables["AWS_FIS_POLL_MAX_WAIT_MILLISECONDS"])
    assert wait == fis.POLL_MAX_WAIT_MILLISECONDS > 0
    assert wait / 1000 <= consumer["Timeout"] / 5
    location = variables["AWS_FIS_CONFIGURATION_LOCATION"]  # an S3 ARN ending in the folder's /
    assert location == {"Fn::Join": ["", [_arn(synth, stack.experiments.bucket), "/FisConfigs/"]]}


def test_the_consumer_reads_fault_configurations_only(synth) -> None:
    stack = synth.stack
    role = stack.functions.consumer.role
    (policy,) = [
        p["Properties"]
        for p in synth.of_type("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": synth.logical_id(role)}]
    ]
    found = _statements(policy["PolicyDocument"])
    assert found[("s3:ListBucket",)]["Condition"] == {"StringLike": {"s3:prefix": ["FisConfigs/*"]}}
    assert _mentions(found[("s3:GetObject",)]["Resource"], "/FisConfigs/*")
    assert not any("s3:PutObject" in actions for actions in found)


def test_the_isolated_subnets_reach_the_fis_bucket_through_a_gateway_endpoint(synth) -> None:
    stack = synth.stack
    endpoint = _props(synth, stack.experiments.endpoint)
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert _mentions(endpoint["ServiceName"], ".s3")
    isolated = [
        stack.resolve(subnet.route_table.route_table_id)
        for subnet in stack.network.vpc.isolated_subnets
    ]
    assert endpoint["RouteTableIds"] == isolated
    (statement,) = endpoint["PolicyDocument"]["Statement"]  # this bucket, read only
    assert sorted(statement["Action"]) == ["s3:GetObject", "s3:ListBucket"]
    assert all(
        _mentions(r, synth.logical_id(stack.experiments.bucket)) for r in statement["Resource"]
    )
    consumer = synth.resources[synth.logical_id(stack.functions.consumer)]
    assert synth.logical_id(stack.experiments.endpoint) in consumer["DependsOn"]


def test_the_bucket_is_private_tls_only_and_kept(synth) -> None:
    bucket_id = synth.logical_id(synth.stack.experiments.bucket)
    bucket = synth.resources[bucket_id]
    assert bucket["DeletionPolicy"] == "Retain"  # the reports are a drill's evidence
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    rules = {
        r["Prefix"]: r["ExpirationInDays"]
        for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    }
    assert rules == {"FisConfigs/": 1, "reports/": 365}
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_checkov_skip_on_the_bucket_has_a_reason(synth) -> None:
    bucket = synth.resources[synth.logical_id(synth.stack.experiments.bucket)]
    skips = bucket["Metadata"]["checkov"]["skip"]
    assert skips
    for skip in skips:
        assert skip["id"].startswith("CKV_") and skip["comment"].strip()


def test_the_drill_policy_covers_what_the_drill_calls_on_this_stack_only(synth) -> None:
    stack = synth.stack
    experiments = stack.experiments
    policy = _props(synth, experiments.drill_policy)
    found = _statements(policy["PolicyDocument"])
    assert found[("cloudformation:DescribeStacks",)]["Resource"] == {"Ref": "AWS::StackId"}
    assert found[("cognito-idp:AdminCreateUser", "cognito-idp:AdminSetUserPassword")][
        "Resource"
    ] == _arn(synth, stack.api.user_pool)
    start = found[("fis:StartExperiment",)]["Resource"]
    for template in (experiments.failover, experiments.consumer_fault):
        assert _mentions(start, f"'Ref': '{synth.logical_id(template)}'")
    assert _mentions(
        found[("fis:GetExperiment", "fis:StopExperiment")]["Resource"], ":experiment/*"
    )
    assert found[("cloudwatch:DescribeAlarms",)]["Resource"] == [
        _arn(synth, alarm) for alarm in experiments.stop_alarms
    ]
    assert found[("lambda:InvokeFunction",)]["Resource"] == _arn(synth, stack.functions.reconcile)
    dlq = _arn(synth, stack.queues.dlq)
    redrive = (
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:ListMessageMoveTasks",
        "sqs:ReceiveMessage",
        "sqs:StartMessageMoveTask",
    )
    assert found[redrive]["Resource"] == dlq
    assert found[("sqs:SendMessage",)]["Resource"] == _arn(synth, stack.queues.queue)
    key = stack.queues.queue.encryption_master_key  # the DLQ's messages and the move task's
    assert key is not None
    assert found[("kms:Decrypt", "kms:GenerateDataKey")]["Resource"] == _arn(synth, key)
    # FIS fails the cluster over with its own role: the drill cannot, except through a template.
    assert not any(a.startswith("rds:Failover") for actions in found for a in actions)
    unscoped = {actions for actions, s in found.items() if s["Resource"] == "*"}
    assert unscoped == {("rds:DescribeEvents",), ("cloudwatch:GetMetricData",)}


def test_the_drill_reads_only_outputs_the_stack_declares(synth) -> None:
    outputs = synth.template.to_json()["Outputs"]
    assert set(OUTPUT_NAMES.values()) | {"DirectPath"} <= outputs.keys()
    experiments = synth.stack.experiments
    assert outputs["FailoverExperimentTemplateId"]["Value"] == {
        "Ref": synth.logical_id(experiments.failover)
    }
    assert outputs["ConsumerFaultExperimentTemplateId"]["Value"] == {
        "Ref": synth.logical_id(experiments.consumer_fault)
    }
    assert outputs["DrillPolicyArn"]["Value"] == {"Ref": synth.logical_id(experiments.drill_policy)}


def test_the_drill_waits_three_polls_and_aws_documented_ramp_up_before_the_rest() -> None:
    """Not "one poll interval reaches every invocation": an environment reads the configuration
    at its next poll (up to one interval), a poll due while it sat frozen runs only in its next
    invocation, and one that outlasts the invocation's wait finishes in a later one. The drill
    waits three intervals, and no less than the 60 s AWS documents at the default interval; then
    it reads from CloudWatch whether the fault landed (tests/unit/test_aws_drill.py)."""
    assert aws_target.RAMP_UP_SECONDS >= 3 * fis.SLOW_POLL_SECONDS
    assert aws_target.RAMP_UP_SECONDS >= 60


@pytest.mark.parametrize("which", ["failover", "consumer_fault"])
def test_each_template_waits_for_the_experiment_roles_policy(synth, which) -> None:
    """FIS checks the role when the template is created: its policy must exist by then."""
    experiments = synth.stack.experiments
    template = synth.resources[synth.logical_id(getattr(experiments, which))]
    policy = experiments.role.node.find_child("DefaultPolicy")
    assert template["DependsOn"] == [synth.logical_id(policy)]
