"""The OpenAPI document is the one definition: the gateway routes by it, README's API section
lists what it says, and its order schema is the functions' model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandbox.functions.orders import Order
from sandbox.standins.api_gateway import openapi
from sandbox.standins.aws_lambda.invoke import load_handler

README = Path(__file__).resolve().parents[2] / "README.md"
OPERATIONS = [
    (method.upper(), path, op)
    for path, item in openapi.document()["paths"].items()
    for method, op in item.items()
]


def api_section() -> str:
    text = README.read_text()
    return text[text.index("### The API") : text.index("## Drills")]


def test_every_function_route_names_a_handler_that_loads(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the producer makes its client at import
    monkeypatch.setenv("QUEUE_URL", "http://127.0.0.1:9/queue/orders.fifo")
    routes = openapi.functions()
    assert set(routes) == {("POST", "/orders"), ("POST", "/direct/orders")}
    for name, spec in routes.values():
        assert callable(load_handler(spec)), name


def test_the_order_schema_is_the_models():
    assert openapi.document()["components"]["schemas"]["Order"] == Order.model_json_schema()


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=lambda x: str(x)[:20])
def test_readme_lists_each_operation_with_its_statuses(method, path, op):
    rows = [
        row
        for row in api_section().splitlines()
        if row.startswith("|") and f"`{method} {path}`" in row
    ]
    assert len(rows) == 1, f"README's API table has no single row for {method} {path}"
    listed = set(re.findall(r"\b[1-5]\d\d\b", rows[0]))
    assert listed == set(op["responses"]), f"{method} {path}: README {listed}, document"


def test_readme_lists_no_operation_the_document_lacks():
    listed = set(re.findall(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`]*)`", api_section()))
    assert listed <= {(method, path) for method, path, _ in OPERATIONS}
