"""The REST API and who may call it: a Cognito user pool, and its authorizer on every method.

POST /orders goes to the producer; POST /direct/orders (optional) to the direct-write function. The
authorizer validates Cognito ID tokens (``Authorization: <IdToken>``), as the local gateway
validates its own JWTs.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_logs as logs
from constructs import Construct

from aws.stacks.functions import Functions

STAGE = "prod"
#: Per-stage throttling: a ceiling for a runaway client behind the WAF's per-IP rate limit.
RATE_LIMIT_PER_SECOND = 500
BURST_LIMIT = 1000


class Api(Construct):
    """The user pool, its app client (no secret: a drill signs in with a password), the API."""

    def __init__(self, scope: Construct, construct_id: str, *, functions: Functions) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
            ),
            account_recovery=cognito.AccountRecovery.NONE,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.client = self.user_pool.add_client(
            "Client",
            auth_flows=cognito.AuthFlow(
                user_password=True, admin_user_password=True, user_srp=True
            ),
            generate_secret=False,
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
        )
        authorizer = apigw.CognitoUserPoolsAuthorizer(
            self, "Authorizer", cognito_user_pools=[self.user_pool]
        )
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.TWO_WEEKS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            description="Orders API of the near-zero RPO sandbox",
            endpoint_types=[apigw.EndpointType.REGIONAL],  # CloudFront is in front already
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies are orders: keep them out of the logs
                metrics_enabled=True,
                throttling_rate_limit=RATE_LIMIT_PER_SECOND,
                throttling_burst_limit=BURST_LIMIT,
            ),
            default_method_options=apigw.MethodOptions(
                authorizer=authorizer, authorization_type=apigw.AuthorizationType.COGNITO
            ),
        )
        self.api.root.add_resource("orders").add_method(
            "POST", apigw.LambdaIntegration(functions.producer)
        )
        if functions.direct is not None:
            self.api.root.add_resource("direct").add_resource("orders").add_method(
                "POST", apigw.LambdaIntegration(functions.direct)
            )
