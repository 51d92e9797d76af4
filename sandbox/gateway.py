"""The API Gateway + Cognito authorizer stand-in: an HTTP server on loopback.

It checks the bearer token, turns the request into an API Gateway (REST, proxy integration) event,
calls the producer function with it and returns what the function returns. Errors are JSON, with
the status API Gateway would use.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from sandbox import identity, process, runtime
from sandbox.lambda_runtime import Handler, LambdaContext, load_handler
from sandbox.state import StackState, load

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own request limit
ROUTES = {
    ("POST", "/orders"): ("producer", "sandbox.functions.producer:handler"),
    ("POST", "/direct/orders"): ("direct", "sandbox.functions.direct:handler"),
}
log = logging.getLogger("gateway")


def proxy_event(
    method: str, path: str, headers: dict[str, str], body: str, claims: dict[str, Any]
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
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": now_ms,
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": {"claims": claims},
        },
    }


class Gateway(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(
        self,
        port: int,
        verifier: identity.Verifier,
        jwks: dict[str, Any],
        functions: dict[tuple[str, str], tuple[str, Handler]],
        pool_path: str,
    ) -> None:
        super().__init__(("127.0.0.1", port), RequestHandler)
        self.verifier = verifier
        self.jwks = jwks
        self.functions = functions
        self.pool_path = pool_path


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Gateway

    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def do_PUT(self) -> None:
        self.route("PUT")

    def do_DELETE(self) -> None:
        self.route("DELETE")

    def route(self, method: str) -> None:
        started = time.perf_counter()
        path = urlsplit(self.path).path
        status = self.dispatch(method, path)
        log.info(
            json.dumps(
                {
                    "method": method,
                    "path": path,
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                }
            )
        )

    def dispatch(self, method: str, path: str) -> int:
        if (method, path) == ("GET", "/health"):
            return self.reply(200, {"status": "ok"})
        if (method, path) == ("GET", f"{self.server.pool_path}/.well-known/jwks.json"):
            return self.reply(200, self.server.jwks)
        function = self.server.functions.get((method, path))
        if function is None:
            return self.reply(404, {"message": f"no route for {method} {path}"}, drain=True)
        try:
            claims = self.server.verifier.verify(self.headers.get("Authorization"))
        except identity.Unauthorized as error:
            return self.reply(401, {"message": f"Unauthorized: {error}"}, drain=True)
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            return self.reply(411, {"message": "send a Content-Length"}, close=True)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            return self.reply(413, {"message": f"body over {MAX_PAYLOAD_BYTES} bytes"}, close=True)
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        name, handler = function
        event = proxy_event(method, self.path, dict(self.headers.items()), body, claims)
        try:
            result = handler(event, LambdaContext(function_name=name, timeout_seconds=29))
        except Exception:
            log.exception("function %s failed", name)
            return self.reply(502, {"message": "Internal server error"})
        raw = result.get("body") or ""
        return self.send(result.get("statusCode", 200), raw.encode(), result.get("headers") or {})

    def reply(
        self, status: int, body: dict[str, Any], *, drain: bool = False, close: bool = False
    ) -> int:
        if drain:  # read what the client sent so the connection can be reused
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_PAYLOAD_BYTES:
                close = True
            else:
                self.rfile.read(length)
        headers = {"Content-Type": "application/json"} | ({"Connection": "close"} if close else {})
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if close:
            self.close_connection = True
        return self.send(status, json.dumps(body).encode(), headers)

    def send(self, status: int, body: bytes, headers: dict[str, str]) -> int:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return status

    def log_message(self, format: str, *args: Any) -> None:  # the route() line says it all
        pass


def serve(state: StackState) -> None:
    os.environ.update(state.function_env())
    functions = {route: (name, load_handler(spec)) for route, (name, spec) in ROUTES.items()}
    keys = identity.jwks(state)
    verifier = identity.Verifier(keys, state.issuer, state.client_id)
    pool_path = urlsplit(state.issuer).path
    server = Gateway(state.ports["api"], verifier, keys, functions, pool_path)
    log.info("gateway listening on %s", state.api_url)
    server.serve_forever()


@dataclass
class GatewayService:
    """The gateway as a stack component: a ``python -m sandbox.gateway`` process."""

    name: str = "api"

    def command(self, state: StackState) -> process.Command:
        return process.module_command("sandbox.gateway", state.run_dir, "api")

    def start(self, state: StackState) -> None:
        state.pids[self.name] = runtime.of(state).start(state, self.name, self.command)
        process.wait_until(lambda: self.healthy(state), timeout=30, what="API gateway")

    def stop(self, state: StackState) -> None:
        process.stop(state.pids.pop(self.name, None), timeout=5)

    def healthy(self, state: StackState) -> bool:
        return httpx.get(f"{state.api_url}/health", timeout=2).status_code == 200


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    serve(load(Path(os.environ["SANDBOX_RUN_DIR"])))
