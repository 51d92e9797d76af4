"""What an API Gateway proxy integration expects back from a function."""

from __future__ import annotations

import json
from typing import Any


def response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
