"""The event API Gateway's REST proxy integration hands a Lambda function, from an HTTP request."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.standins.aws_lambda.invoke import request_id


def proxy_event(
    method: str,
    path: str,
    headers: dict[str, str],
    body: str,
    claims: dict[str, Any],
    source_ip: str,
) -> dict[str, Any]:
    """The event API Gateway's REST proxy integration sends a Lambda function."""
    url = urlsplit(path)
    query = {k: v[-1] for k, v in parse_qs(url.query).items()} or None
    now_ms = int(time.time() * 1000)
    return {
        "resource": url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": headers,
        "queryStringParameters": query,
        "pathParameters": None,
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": url.path,
            "httpMethod": method,
            "path": url.path,
            "stage": "local",
            "requestId": request_id(),
            "requestTimeEpoch": now_ms,
            "identity": {"sourceIp": source_ip},
            "authorizer": {"claims": claims},
        },
    }
