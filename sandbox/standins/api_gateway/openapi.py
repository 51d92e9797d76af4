"""The API's one definition: ``openapi.yaml`` beside this file, with the Order schema taken from
the model the functions validate with, so the document, the gateway's routes and the functions
can never disagree about what an order is."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from sandbox.functions.orders import Order

SOURCE = Path(__file__).with_name("openapi.yaml")
METHODS = ("get", "put", "post", "delete", "patch")


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document as the gateway serves it at ``GET /openapi.json``."""
    spec = yaml.safe_load(SOURCE.read_text())
    order = Order.model_json_schema(ref_template="#/components/schemas/{model}")
    spec["components"]["schemas"] |= order.pop("$defs", {}) | {"Order": order}
    return spec


def functions() -> dict[tuple[str, str], tuple[str, str]]:
    """``(METHOD, path) -> (function name, "module:handler")`` for every operation a function
    serves (the gateway answers the others, /health and /openapi.json, itself)."""
    return {
        (method.upper(), path): (op["x-function"]["name"], op["x-function"]["handler"])
        for path, item in document()["paths"].items()
        for method, op in item.items()
        if method in METHODS and "x-function" in op
    }


def own_operations() -> dict[tuple[str, str], str]:
    """``(METHOD, path) -> operationId`` for the operations the gateway answers itself."""
    return {
        (method.upper(), path): op["operationId"]
        for path, item in document()["paths"].items()
        for method, op in item.items()
        if method in METHODS and "x-function" not in op
    }


def allowed(path: str) -> list[str]:
    """The methods the document lists for ``path`` (empty: no such path)."""
    item = document()["paths"].get(path, {})
    methods = [method.upper() for method in METHODS if method in item]
    return [*methods, "HEAD"] if "GET" in methods else methods
