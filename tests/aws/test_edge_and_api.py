"""The front door: CloudFront with a WAF web ACL, then a REST API that needs a Cognito token on
every method."""

from __future__ import annotations

from aws_cdk.assertions import Match

from aws.stacks.edge import MANAGED_RULE_GROUPS, ORIGIN_KEY_HEADER, RATE_LIMIT_PER_5_MIN


def _path_of(synth, resource_id: str) -> str:
    """``/orders`` or ``/direct/orders``: a method's resource path, rebuilt from the template."""
    parts = []
    while resource_id:
        resource = synth.resources[resource_id]["Properties"]
        parts.append(resource["PathPart"])
        parent = resource["ParentId"]
        resource_id = parent.get("Ref", "")
    return "/" + "/".join(reversed(parts))


def test_every_method_needs_a_cognito_token(synth) -> None:
    stack = synth.stack
    (authorizer_id,) = synth.of_type("AWS::ApiGateway::Authorizer")
    methods = synth.of_type("AWS::ApiGateway::Method").values()
    assert methods
    for method in methods:
        assert method["Properties"]["AuthorizationType"] == "COGNITO_USER_POOLS"
        assert method["Properties"]["AuthorizerId"] == {"Ref": authorizer_id}
    synth.template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "COGNITO_USER_POOLS",
            "ProviderARNs": [{"Fn::GetAtt": [synth.logical_id(stack.api.user_pool), "Arn"]}],
            "IdentitySource": "method.request.header.Authorization",
        },
    )


def test_routes_lead_to_the_sandbox_functions(synth) -> None:
    functions = synth.stack.functions
    routes = {}
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        path = _path_of(synth, props["ResourceId"]["Ref"])
        # The Lambda proxy integration's URI: arn:...:functions/<function arn>/invocations
        target = props["Integration"]["Uri"]["Fn::Join"][1][3]["Fn::GetAtt"][0]
        routes[(props["HttpMethod"], path)] = target
    expected = {("POST", "/orders"): synth.logical_id(functions.producer)}
    if functions.direct is not None:
        expected[("POST", "/direct/orders")] = synth.logical_id(functions.direct)
    assert routes == expected


def test_user_pool_is_closed_to_sign_up(synth) -> None:
    synth.template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {"AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True}},
    )
    synth.template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "GenerateSecret": False,
            "ExplicitAuthFlows": Match.array_with(["ALLOW_USER_PASSWORD_AUTH"]),
        },
    )


def test_web_acl_is_cloudfront_scoped_with_managed_rules_and_a_rate_limit(synth) -> None:
    (acl,) = synth.of_type("AWS::WAFv2::WebACL").values()
    props = acl["Properties"]
    assert props["Scope"] == "CLOUDFRONT"
    assert props["DefaultAction"] == {"Allow": {}}
    managed = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for rule in props["Rules"]
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert managed == set(MANAGED_RULE_GROUPS)
    assert "AWSManagedRulesSQLiRuleSet" in managed
    (rate,) = [r for r in props["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {
        "Limit": RATE_LIMIT_PER_5_MIN,
        "AggregateKeyType": "IP",
    }
    assert len({rule["Priority"] for rule in props["Rules"]}) == len(props["Rules"])


def test_the_web_acl_guards_the_distribution_in_front_of_the_api(synth) -> None:
    stack = synth.stack
    (distribution,) = synth.of_type("AWS::CloudFront::Distribution").values()
    config = distribution["Properties"]["DistributionConfig"]
    assert config["WebACLId"] == {"Fn::GetAtt": [synth.logical_id(stack.edge.web_acl), "Arn"]}
    (origin,) = config["Origins"]
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    api_id = synth.logical_id(stack.api.api)
    assert {"Ref": api_id} in origin["DomainName"]["Fn::Select"][1]["Fn::Split"][1]["Fn::Join"][1]
    behavior = config["DefaultCacheBehavior"]
    assert "POST" in behavior["AllowedMethods"]
    assert behavior["ViewerProtocolPolicy"] == "https-only"


def test_cloudfront_forwards_the_authorization_header(synth) -> None:
    synth.template.has_resource_properties(
        "AWS::CloudFront::CachePolicy",
        {
            "CachePolicyConfig": Match.object_like(
                {
                    "DefaultTTL": 0,
                    "ParametersInCacheKeyAndForwardedToOrigin": Match.object_like(
                        {
                            "HeadersConfig": {
                                "HeaderBehavior": "whitelist",
                                "Headers": ["Authorization"],
                            }
                        }
                    ),
                }
            )
        },
    )


def test_stage_logs_access_but_not_bodies(synth) -> None:
    synth.template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "MethodSettings": [Match.object_like({"DataTraceEnabled": False})],
        },
    )


def _origin_key_reference(synth) -> dict:
    """How CloudFormation reads the origin key: a dynamic reference to the secret (no value)."""
    secret = synth.logical_id(synth.stack.api.origin_key_secret)
    return {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": secret}, ":SecretString:::}}"]]}


def test_the_stage_answers_only_requests_that_came_through_cloudfront(synth) -> None:
    methods = synth.of_type("AWS::ApiGateway::Method").values()
    assert methods and all(m["Properties"]["ApiKeyRequired"] is True for m in methods)
    (key,) = synth.of_type("AWS::ApiGateway::ApiKey").values()
    assert key["Properties"]["Value"] == _origin_key_reference(synth)
    (plan,) = synth.of_type("AWS::ApiGateway::UsagePlan").values()
    (stage,) = plan["Properties"]["ApiStages"]
    assert stage["ApiId"] == {"Ref": synth.logical_id(synth.stack.api.api)}
    synth.template.resource_count_is("AWS::ApiGateway::UsagePlanKey", 1)
    (distribution,) = synth.of_type("AWS::CloudFront::Distribution").values()
    (origin,) = distribution["Properties"]["DistributionConfig"]["Origins"]
    assert origin["OriginCustomHeaders"] == [
        {"HeaderName": ORIGIN_KEY_HEADER, "HeaderValue": _origin_key_reference(synth)}
    ]
    assert ORIGIN_KEY_HEADER == "x-api-key"  # the header API Gateway reads its key from


def test_the_app_client_has_the_drills_flow_and_no_oauth(synth) -> None:
    (client,) = synth.of_type("AWS::Cognito::UserPoolClient").values()
    props = client["Properties"]
    assert props["ExplicitAuthFlows"] == ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert props["AllowedOAuthFlowsUserPoolClient"] is False
    for oauth in ("AllowedOAuthFlows", "AllowedOAuthScopes", "CallbackURLs", "LogoutURLs"):
        assert oauth not in props, oauth


def test_xray_traces_the_stage_and_every_function(synth) -> None:
    synth.template.has_resource_properties("AWS::ApiGateway::Stage", {"TracingEnabled": True})
    functions = synth.stack.functions
    ours = [functions.producer, functions.consumer, functions.reconcile, functions.migrate]
    if functions.direct is not None:
        ours.append(functions.direct)
    for function in ours:
        properties = synth.resources[synth.logical_id(function)]["Properties"]
        assert properties["TracingConfig"] == {"Mode": "Active"}, function.node.id


def test_the_account_logging_role_is_left_alone_by_default(synth) -> None:
    assert synth.stack.settings.api_gateway_account_role is False
    synth.template.resource_count_is("AWS::ApiGateway::Account", 0)
