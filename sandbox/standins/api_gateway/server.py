"""The API Gateway + Cognito authorizer stand-in's HTTP server (``python -m`` this module).

It checks the bearer token, turns the request into an API Gateway (REST, proxy integration) event,
calls the producer function with it and returns what the function returns. Errors are JSON, with
the status API Gateway would use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sandbox.platform.state import StackState, load
from sandbox.spec import profiles
from sandbox.standins import cognito
from sandbox.standins.api_gateway import openapi
from sandbox.standins.api_gateway.event import proxy_event
from sandbox.standins.aws_lambda.invoke import Handler, LambdaContext, load_handler
from sandbox.standins.sqs import journal

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own request limit
IDLE_SECONDS = 30  # a connection that sends nothing for this long is closed (slow or idle)
LINGER_SECONDS = 1.0
log = logging.getLogger("gateway")


class Gateway(ThreadingHTTPServer):
    """One thread per connection, so an idle or slow client only ever holds its own."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        verifier: cognito.Verifier,
        jwks: dict[str, Any],
        functions: dict[tuple[str, str], tuple[str, Handler]],
    ) -> None:
        super().__init__(address, RequestHandler)
        self.verifier = verifier
        self.functions = functions
        #: The operations the gateway answers itself, by the document's operationId.
        self.own: dict[str, Callable[[], dict[str, Any]]] = {
            "health": lambda: {"status": "ok"},
            "openapi": openapi.document,
            "jwks": lambda: jwks,
        }

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        """A lingering close: stop sending, then read what the client still sends (for at most
        LINGER_SECONDS), so a refusal sent before its request was read reaches the client
        instead of a connection reset."""
        deadline = time.monotonic() + LINGER_SECONDS
        with contextlib.suppress(OSError, ValueError):  # ValueError: the deadline passed
            request.shutdown(socket.SHUT_WR)
            while True:
                request.settimeout(deadline - time.monotonic())
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
    the gateway's own errors included, is JSON; a request's body is always read or the
    connection closed, so the next request on it is never read out of a body."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    server: Gateway
    body_pending: bool

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
        self.body_pending = True
        path = self.path
        try:
            path = urlsplit(self.path).path
            status = self.dispatch(self.command, path)
        except BadRequest as refused:
            status = self.reply(refused.status, {"message": str(refused)}, close=True)
        except ValueError:  # urlsplit: not a URL at all
            status = self.reply(400, {"message": f"{self.path!r} is not a path"}, close=True)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up before the answer
            self.close_connection = True
            log.info(json.dumps({"method": self.command, "path": path, "client": "went away"}))
            return
        except Exception:
            log.exception("the gateway failed on %s %s", self.command, path)
            status = self.reply(500, {"message": "Internal server error"}, close=True)
        if self.body_pending and not self.close_connection:
            self.discard_body()
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
        chunked, length = self.framing()
        if method == "HEAD":  # GET without the body (send() leaves it out)
            method = "GET"
        own = openapi.own_operations().get((method, path))
        if own is not None:
            return self.reply(200, self.server.own[own]())
        function = self.server.functions.get((method, path))
        if function is None:
            return self.no_route(method, path)
        try:
            claims = self.server.verifier.verify(self.headers.get("Authorization"))
        except cognito.Unauthorized as error:
            return self.reply(401, {"message": f"Unauthorized: {error}"})
        if not _is_json(self.headers.get("Content-Type", "")):
            message = "send the order as JSON: Content-Type: application/json"
            return self.reply(415, {"message": message})
        body = self.read_body(chunked, length)
        name, handler = function
        event = proxy_event(
            method, self.path, dict(self.headers.items()), body, claims, self.client_address[0]
        )
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
            return self.reply(404, {"message": f"no route for {method} {path}"})
        if method == "OPTIONS":
            return self.send(204, b"", {"Allow": ", ".join([*allowed, "OPTIONS"])})
        message = f"{method} is not allowed on {path}: use {' or '.join(allowed)}"
        return self.reply(405, {"message": message}, headers={"Allow": ", ".join(allowed)})

    def framing(self) -> tuple[bool, int]:
        """How the body is sent: (chunked, Content-Length). Anything ambiguous is refused, never
        guessed, since a guess is how one request smuggles another."""
        codings = self.headers.get_all("Transfer-Encoding") or []
        lengths = set(self.headers.get_all("Content-Length") or [])
        if codings:
            if [coding.strip().lower() for coding in codings] != ["chunked"]:
                raise BadRequest(501, f"Transfer-Encoding {', '.join(codings)} is not supported")
            if lengths:
                raise BadRequest(400, "send either Content-Length or chunked, not both")
            return True, 0
        if len(lengths) > 1:
            raise BadRequest(400, "Content-Length given twice, differently")
        value = lengths.pop() if lengths else "0"
        if not re.fullmatch(r"[0-9]{1,10}", value):
            raise BadRequest(400, f"Content-Length {value!r} is not a length")
        if int(value) > MAX_PAYLOAD_BYTES:
            raise BadRequest(413, f"body over {MAX_PAYLOAD_BYTES} bytes")
        return False, int(value)

    def read_body(self, chunked: bool, length: int) -> str:
        """The request body, from a Content-Length or chunked transfer, as UTF-8 text."""
        raw = self.read_chunks() if chunked else self.rfile.read(length)
        self.body_pending = False
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(400, "the body is not valid UTF-8") from None

    def discard_body(self) -> None:
        """Read the body an answer did not need, or close: the next request starts after it."""
        try:
            self.read_body(*self.framing())
        except (BadRequest, OSError):
            self.close_connection = True

    def read_chunks(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_line):
                raise BadRequest(400, "malformed chunked body")
            size = int(size_line, 16)
            if len(body) + size > MAX_PAYLOAD_BYTES:
                raise BadRequest(413, f"body over {MAX_PAYLOAD_BYTES} bytes")
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, ignored
                    pass
                return bytes(body)
            body += self.rfile.read(size)
            if self.rfile.readline(3) != b"\r\n":
                raise BadRequest(400, "malformed chunked body")

    def handle_expect_100(self) -> bool:
        """Refuse an oversized or ambiguous body before the client sends it; else ask for it."""
        try:
            self.framing()
        except BadRequest as refused:
            self.reply(refused.status, {"message": str(refused)}, close=True)
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, headers too large) as JSON too."""
        if self.request_version == "HTTP/0.9":  # a request line too broken to say its version
            self.request_version = self.protocol_version
        self.reply(code, {"message": message or HTTPStatus(code).phrase}, close=True)

    def reply(
        self,
        status: int,
        body: dict[str, Any],
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> int:
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
        if status != 204:  # a 204 has no body, and says no length either
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
    # The SQS stand-in's durability: the functions' sends are on disk before they leave.
    journal.install(state.run_dir)
    direct = profiles.named(state.consumer).direct  # the profile may put its own function there
    functions = {
        route: (name, load_handler(direct if name == "direct" and direct else spec))
        for route, (name, spec) in openapi.functions().items()
    }
    keys = cognito.jwks(state)
    verifier = cognito.Verifier(keys, state.issuer, state.client_id)
    address = (state.bind_host, state.ports["api"])
    server = Gateway(address, verifier, keys, functions)
    log.info("gateway listening on %s", state.api_url)
    server.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    serve(load(Path(os.environ["SANDBOX_RUN_DIR"])))
