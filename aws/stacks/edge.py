"""CloudFront in front of the API, with a WAF web ACL: AWS managed rule groups (including SQL
injection) and a per-IP rate limit.

A CLOUDFRONT-scope web ACL can only be created in us-east-1, which is why the whole stack deploys
there (`aws.settings.REGION`) rather than splitting the ACL into a second, cross-region stack.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

#: Requests per IP per 5 minutes. A default drill (2 x 1000 orders) fits; a runaway client does not.
RATE_LIMIT_PER_5_MIN = 10_000
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
)
#: Counted, not blocked: the common rule set blocks bodies over 8 KB, but an order may be up to
#: SQS's 256 KiB, and the producer answers 413 itself above that (as it does locally).
COUNT_ONLY = {"AWSManagedRulesCommonRuleSet": ["SizeRestrictions_BODY"]}
ORIGIN_KEY_HEADER = "x-api-key"


class Edge(Construct):
    """The web ACL and the distribution it protects."""

    def __init__(
        self, scope: Construct, construct_id: str, *, api: apigw.RestApi, origin_key: str
    ) -> None:
        super().__init__(scope, construct_id)
        rules = [_managed(name, priority) for priority, name in enumerate(MANAGED_RULE_GROUPS)]
        rules.append(_rate_limit(priority=len(rules)))
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="CLOUDFRONT",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("orders-edge"),
            rules=rules,
        )
        # The authorizer needs the Authorization header, which CloudFront forwards only when it is
        # part of the cache key; with a zero default TTL (and POST never cached) nothing is cached.
        forward_authorization = cloudfront.CachePolicy(
            self,
            "ForwardAuthorization",
            header_behavior=cloudfront.CacheHeaderBehavior.allow_list("Authorization"),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.all(),
            default_ttl=Duration.seconds(0),
            min_ttl=Duration.seconds(0),
            max_ttl=Duration.seconds(1),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="near-zero RPO sandbox: orders API",
            default_behavior=cloudfront.BehaviorOptions(
                # The API key the API requires of every method: only requests forwarded by this
                # distribution carry it (CloudFront replaces a viewer's own x-api-key).
                origin=origins.RestApiOrigin(api, custom_headers={ORIGIN_KEY_HEADER: origin_key}),
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                cache_policy=forward_authorization,
                # Everything else the viewer sent, except Host (API Gateway routes on its own).
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
            ),
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            web_acl_id=self.web_acl.attr_arn,
        )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
    group: dict[str, Any] = {"vendor_name": "AWS", "name": name}
    if name in COUNT_ONLY:
        group["rule_action_overrides"] = [
            wafv2.CfnWebACL.RuleActionOverrideProperty(
                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
            )
            for rule in COUNT_ONLY[name]
        ]
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(**group)
        ),
        visibility_config=_visibility(name),
    )


def _rate_limit(priority: int) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name="RateLimitPerIp",
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                limit=RATE_LIMIT_PER_5_MIN, aggregate_key_type="IP"
            )
        ),
        visibility_config=_visibility("RateLimitPerIp"),
    )
