"""The API Gateway + Cognito authorizer stand-in: an HTTP server on loopback.

It checks the bearer token, turns the request into an API Gateway (REST, proxy integration) event,
calls the producer function with it and returns what the function returns. Errors are JSON, with
the status API Gateway would use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from sandbox import identity, openapi, process, runtime
from sandbox.lambda_runtime import Handler, LambdaContext, load_handler
from sandbox.state import StackState, load

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own request limit
IDLE_SECONDS = 30  # a connection that sends nothing for this long is closed (slow or idle)
LINGER_SECONDS = 1.0
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

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        """A lingering close: stop sending, then read what the client still sends (bounded), so
        a refusal sent before its request was read reaches it instead of a connection reset."""
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
            request.settimeout(LINGER_SECONDS)
            for _ in range(64):  # at most 4 MiB
                if not request.recv(65536):
                    break
        self.close_request(request)


class BadRequest(Exception):
    """A request the gateway refuses before any function sees it: the status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RequestHandler(BaseHTTPRequestHandler):
    """One connection. Routes and their methods come from the OpenAPI document; every answer,
    the gateway's own errors included, is JSON."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    server: Gateway

    def handle_one_request(self) -> None:
        """Serve one request, whatever its method: unknown paths get 404, known paths a wrong
        method 405 with ``Allow`` (HTTP's answer; API Gateway's REST API would say 403 "Missing
        Authentication Token", which misleads more than it helps)."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(414)
                return
            if not self.parse_request():  # it answered (bad request line, headers too large)
                return
            self.route()
            self.wfile.flush()
        except OSError:  # idle past IDLE_SECONDS, or the client went away: nothing to answer
            self.close_connection = True

    def route(self) -> None:
        started = time.perf_counter()
        path = urlsplit(self.path).path
        try:
            status = self.dispatch(self.command, path)
        except BadRequest as refused:
            status = self.reply(refused.status, {"message": str(refused)}, close=True)
        log.info(
            json.dumps(
                {
                    "method": self.command,
                    "path": path,
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                }
            )
        )

    def dispatch(self, method: str, path: str) -> int:
        if method == "HEAD":  # GET without the body (send() leaves it out)
            method = "GET"
        if (method, path) == ("GET", "/health"):
            return self.reply(200, {"status": "ok"})
        if (method, path) == ("GET", "/openapi.json"):
            return self.reply(200, openapi.document())
        if (method, path) == ("GET", f"{self.server.pool_path}/.well-known/jwks.json"):
            return self.reply(200, self.server.jwks)
        function = self.server.functions.get((method, path))
        if function is None:
            return self.no_route(method, path)
        try:
            claims = self.server.verifier.verify(self.headers.get("Authorization"))
        except identity.Unauthorized as error:
            return self.reply(401, {"message": f"Unauthorized: {error}"}, drain=True)
        if not _is_json(self.headers.get("Content-Type", "")):
            message = "send the order as JSON: Content-Type: application/json"
            return self.reply(415, {"message": message}, drain=True)
        body = self.read_body()
        name, handler = function
        event = proxy_event(method, self.path, dict(self.headers.items()), body, claims)
        try:
            result = handler(event, LambdaContext(function_name=name, timeout_seconds=29))
        except Exception:
            log.exception("function %s failed", name)
            return self.reply(502, {"message": "Internal server error"})
        raw = result.get("body") or ""
        return self.send(result.get("statusCode", 200), raw.encode(), result.get("headers") or {})

    def no_route(self, method: str, path: str) -> int:
        allowed = openapi.allowed(path)
        if not allowed:
            return self.reply(404, {"message": f"no route for {method} {path}"}, drain=True)
        if method == "OPTIONS":
            return self.send(204, b"", {"Allow": ", ".join([*allowed, "OPTIONS"])})
        message = f"{method} is not allowed on {path}: use {' or '.join(allowed)}"
        headers = {"Allow": ", ".join(allowed)}
        return self.reply(405, {"message": message}, drain=True, headers=headers)

    def read_body(self) -> str:
        """The request body, from a Content-Length or chunked transfer, as UTF-8 text."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            if "Content-Length" in self.headers:  # both: a smuggling attempt, never guess
                raise BadRequest(400, "send either Content-Length or chunked, not both")
            raw = self.read_chunks()
        else:
            raw = self.rfile.read(self.content_length())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(400, "the body is not valid UTF-8") from None

    def content_length(self) -> int:
        value = self.headers.get("Content-Length") or "0"
        if not value.isdigit():
            raise BadRequest(400, f"Content-Length {value!r} is not a length")
        if int(value) > MAX_PAYLOAD_BYTES:
            raise BadRequest(413, f"body over {MAX_PAYLOAD_BYTES} bytes")
        return int(value)

    def read_chunks(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequest(400, "malformed chunked body") from None
            if len(body) + size > MAX_PAYLOAD_BYTES:
                raise BadRequest(413, f"body over {MAX_PAYLOAD_BYTES} bytes")
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, ignored
                    pass
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after each chunk

    def handle_expect_100(self) -> bool:
        """Refuse an oversized body before the client sends it; otherwise ask for it."""
        try:
            self.content_length()
        except BadRequest as refused:
            self.reply(refused.status, {"message": str(refused)}, close=True)
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, headers too large) as JSON too."""
        self.reply(code, {"message": message or HTTPStatus(code).phrase}, close=True)

    def reply(
        self,
        status: int,
        body: dict[str, Any],
        *,
        drain: bool = False,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> int:
        if drain:  # read what the client sent so the connection can be reused
            try:
                self.read_body()
            except BadRequest:
                close = True
        headers = {"Content-Type": "application/json"} | (headers or {})
        if close:
            headers["Connection"] = "close"
            self.close_connection = True
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return self.send(status, json.dumps(body).encode(), headers)

    def send(self, status: int, body: bytes, headers: dict[str, str]) -> int:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def log_message(self, format: str, *args: Any) -> None:  # the route() line says it all
        pass


def _is_json(content_type: str) -> bool:
    """application/json, in UTF-8 (the only charset JSON has) if a charset is named at all."""
    media, _, params = content_type.partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"')
    return media.strip().lower() == "application/json" and charset in ("", "utf-8")


def serve(state: StackState) -> None:
    os.environ.update(state.function_env())
    functions = {
        route: (name, load_handler(spec)) for route, (name, spec) in openapi.functions().items()
    }
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
