"""The reconcile function refuses a request it cannot answer before it touches the database."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from aws.functions import reconcile


@dataclass
class Context:
    function_name: str = "reconcile"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:reconcile"
    aws_request_id: str = "test"


@pytest.mark.parametrize("event", [{}, {"prefix": ""}, {"prefix": 7}, []])
def test_a_prefix_is_required(event, monkeypatch) -> None:
    def no_database() -> None:
        raise AssertionError("connected before validating the event")

    monkeypatch.setattr(reconcile, "connect", no_database)
    with pytest.raises(ValueError, match="prefix"):
        reconcile.handler(event, Context())
