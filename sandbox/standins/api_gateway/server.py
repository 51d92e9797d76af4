"""The API Gateway + Cognito authorizer stand-in's HTTP server (``python -m`` this module).

uvicorn serves it (`sandbox.standins.api_gateway.protocol`: llhttp reads the requests, an event loop
holds the connections, so an idle or slow client holds nothing but its own socket). What is left
here is the gateway: it routes by the OpenAPI document, checks the bearer token, turns the request
into an API Gateway (REST, proxy integration) event, invokes the function with it as Lambda would
and returns what the function returns. Errors are JSON, with the status API Gateway would use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import uvicorn
from botocore.config import Config

from sandbox.platform.state import StackState, load
from sandbox.spec import profiles
from sandbox.standins import cognito
from sandbox.standins.api_gateway import openapi
from sandbox.standins.api_gateway.event import proxy_event
from sandbox.standins.api_gateway.protocol import GatewayProtocol
from sandbox.standins.aws_lambda.invoke import Handler, LambdaContext, load_handler
from sandbox.standins.sqs import journal

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own request limit
MAX_HEADERS = 100
IDLE_SECONDS = 30  # a connection that sends nothing for this long is closed (slow or idle)
#: Instances of each function at once, as a reserved concurrency would allow (an instance per
#: request in flight, as Lambda runs, up to this); a request beyond them waits for one. They share
#: a module, so its one SQS client, whose pool holds a connection an instance, as each Lambda
#: instance's own client would. Threads are made as requests need them, none before the first.
CONCURRENCY = 64
FUNCTION_TIMEOUT = 29  # API Gateway's integration timeout, which the context reports
STOP_SECONDS = 3  # on SIGTERM, how long the requests in flight have to finish
#: How long a verified token is taken as verified: API Gateway caches its authorizer's answers
#: per token (the CDK app leaves resultsCacheTtl at its default, 5 minutes).
AUTH_CACHE_SECONDS = 300
log = logging.getLogger("gateway")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Refused(Exception):
    """A request the gateway answers itself with an error: the status and why."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.close = close


class ClientGone(Exception):
    """The client closed the connection before its request was read."""


class Throttled(Exception):
    """Every instance of the function is busy: Lambda refuses the invocation at once."""


class Function:
    """A Lambda function behind a route: its handler and its instances (a thread each).

    As Lambda runs it: an invocation beyond its `CONCURRENCY` instances is throttled at once,
    not queued, and API Gateway stops waiting after `FUNCTION_TIMEOUT` while the instance runs
    on until its invocation ends. Queued instead, requests piled up without bound while
    LocalStack was down (each send waiting on it), and the gateway grew by 40 MiB an outage."""

    def __init__(self, name: str, handler: Handler) -> None:
        self.name, self.handler = name, handler
        self.instances = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix=name)
        self.running = 0  # changed on the event loop's thread only

    async def invoke(self, event: dict[str, Any]) -> Any:
        """The handler's answer; raises `Throttled`, or TimeoutError after `FUNCTION_TIMEOUT`."""
        if self.running >= CONCURRENCY:
            raise Throttled
        self.running += 1

        def run() -> Any:  # the context starts when an instance takes the event, as Lambda's
            return self.handler(event, LambdaContext(self.name, FUNCTION_TIMEOUT))

        done = asyncio.get_running_loop().run_in_executor(self.instances, run)
        done.add_done_callback(self._ended)
        if not (await asyncio.wait((done,), timeout=FUNCTION_TIMEOUT))[0]:
            done.add_done_callback(self._late)  # nobody reads its result now: it logs its error
            raise TimeoutError  # the instance runs on: `wait` never cancels what it waits for
        return done.result()

    def _ended(self, _: asyncio.Future[Any]) -> None:
        self.running -= 1

    def _late(self, done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("function %s failed after its %g s timeout: %r", self.name,
                      FUNCTION_TIMEOUT, done.exception())  # fmt: skip


class Authorizer:
    """The Cognito authorizer with API Gateway's cache of its answers: a token verified once is
    taken for `AUTH_CACHE_SECONDS`, never past its own expiry. A refusal is not cached."""

    def __init__(self, verifier: cognito.Verifier) -> None:
        self.verifier = verifier
        self.verified: dict[str, tuple[dict[str, Any], float]] = {}

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; raises `cognito.Unauthorized`."""
        now = time.time()
        claims, until = self.verified.get(authorization or "", ({}, 0.0))
        if now < until:
            return claims
        claims = self.verifier.verify(authorization)
        if len(self.verified) >= 1024:  # a bound: a stack has few tokens in use at once
            self.verified.clear()
        self.verified[authorization or ""] = (claims, min(now + AUTH_CACHE_SECONDS, claims["exp"]))
        return claims


@dataclass(frozen=True)
class Request:
    """What the gateway reads of a request's ASGI scope (header names come in lower case)."""

    scope: Scope

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return bytes(self.scope["raw_path"]).decode("latin-1")

    @property
    def target(self) -> str:
        """The path and query, as the client sent them."""
        query = bytes(self.scope["query_string"]).decode("latin-1")
        return f"{self.path}?{query}" if query else self.path

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (lower case), if sent."""
        values = [v for k, v in self.scope["headers"] if k == name.encode()]
        return values[-1].decode("latin-1") if values else None

    def headers(self) -> dict[str, str]:
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in self.scope["headers"]}


class Gateway:
    """The ASGI application. Routes and their methods come from the OpenAPI document; every
    answer, the gateway's own errors included, is JSON."""

    def __init__(
        self,
        authorizer: Authorizer,
        jwks: dict[str, Any],
        functions: dict[tuple[str, str], Function],
    ) -> None:
        self.authorizer = authorizer
        self.functions = functions
        answers: dict[str, Callable[[], dict[str, Any]]] = {
            "health": lambda: {"status": "ok"},
            "openapi": openapi.document,
            "jwks": lambda: jwks,
        }
        #: The operations the gateway answers itself, by (METHOD, path), named by operationId.
        self.own = {route: answers[op] for route, op in openapi.own_operations().items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request; log it if it failed or was refused. A success is not logged, as
        API Gateway logs none unless its access logging is turned on: an accepted order has the
        producer's own line ("order queued"), and a line for each cost the event loop about a
        sixth of its CPU a request (`logging`'s record, caller lookup and flush)."""
        started = time.perf_counter()
        request = Request(scope)
        entry: dict[str, Any] = {"method": request.method, "path": request.path}
        try:
            entry["status"] = await self.route(request, receive, send)
        except Refused as refused:
            message = {"message": str(refused)}
            entry["status"] = await reply(send, refused.status, message, close=refused.close)
        except ClientGone:
            entry["client"] = "went away"
        except Exception:
            log.exception("the gateway failed on %s %s", request.method, request.path)
            message = {"message": "Internal server error"}
            entry["status"] = await reply(send, 500, message, close=True)
        if entry.get("status", 500) >= 400:  # a client gone has no status: it is logged too
            entry["ms"] = round((time.perf_counter() - started) * 1000, 1)
            log.info(json.dumps(entry))

    async def route(self, request: Request, receive: Receive, send: Send) -> int:
        """Unknown paths get 404, known paths a wrong method 405 with ``Allow`` (HTTP's answer;
        API Gateway's REST API would say 403 "Missing Authentication Token", which misleads
        more than it helps)."""
        check_head(request)
        method = "GET" if request.method == "HEAD" else request.method  # the server drops the body
        own = self.own.get((method, request.path))
        if own is not None:
            return await reply(send, 200, own())
        function = self.functions.get((method, request.path))
        if function is None:
            return await no_route(send, method, request.path)
        try:
            claims = self.authorizer.claims(request.header("authorization"))
        except cognito.Unauthorized as error:
            return await reply(send, 401, {"message": f"Unauthorized: {error}"})
        if not _is_json(request.header("content-type") or ""):
            message = "send the order as JSON: Content-Type: application/json"
            return await reply(send, 415, {"message": message})
        body = await read_body(receive)
        headers = request.headers()
        client = request.scope["client"][0] if request.scope.get("client") else ""
        event = proxy_event(method, request.target, headers, body, claims, client)
        try:
            result = await function.invoke(event)
        except Throttled:
            throttled = {"message": "Too Many Requests"}
            return await reply(send, 429, throttled, headers={"Retry-After": "1"})
        except TimeoutError:
            return await reply(send, 504, {"message": "Endpoint request timed out"})
        except Exception:
            log.exception("function %s failed", function.name)
            return await reply(send, 502, {"message": "Internal server error"})
        raw = (result.get("body") or "").encode()
        return await respond(send, result.get("statusCode", 200), raw, result.get("headers") or {})


def check_head(request: Request) -> None:
    """What llhttp reads but the gateway refuses: too many headers, an HTTP version other than
    1.x, and a body over the size limit (refused before any of it is read, so before
    ``100 Continue``). A body framed both ways llhttp refuses itself (`protocol.refusal`)."""
    if request.scope["http_version"] not in ("1.0", "1.1"):
        raise Refused(505, f"HTTP/{request.scope['http_version']} is not supported", close=True)
    if len(request.scope["headers"]) > MAX_HEADERS:
        raise Refused(431, f"more than {MAX_HEADERS} headers", close=True)
    length = request.header("content-length")
    if length is not None and int(length) > MAX_PAYLOAD_BYTES:  # llhttp checked it is a number
        raise Refused(413, f"body over {MAX_PAYLOAD_BYTES} bytes", close=True)


async def read_body(receive: Receive) -> str:
    """The request body (Content-Length or chunked, which llhttp decodes) as UTF-8 text."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body += message.get("body", b"")
        if len(body) > MAX_PAYLOAD_BYTES:
            raise Refused(413, f"body over {MAX_PAYLOAD_BYTES} bytes", close=True)
        if not message.get("more_body"):
            break
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the body is not valid UTF-8") from None


async def no_route(send: Send, method: str, path: str) -> int:
    allowed = openapi.allowed(path)
    if not allowed:
        return await reply(send, 404, {"message": f"no route for {method} {path}"})
    if method == "OPTIONS":
        return await respond(send, 204, b"", {"Allow": ", ".join([*allowed, "OPTIONS"])})
    message = f"{method} is not allowed on {path}: use {' or '.join(allowed)}"
    return await reply(send, 405, {"message": message}, headers={"Allow": ", ".join(allowed)})


async def reply(
    send: Send,
    status: int,
    body: dict[str, Any],
    *,
    close: bool = False,
    headers: dict[str, str] | None = None,
) -> int:
    """A JSON answer; ``close``: the connection ends with it (its request may be unread)."""
    headers = {"Content-Type": "application/json"} | (headers or {})
    if close:
        headers["Connection"] = "close"
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return await respond(send, status, json.dumps(body).encode(), headers)


async def respond(send: Send, status: int, body: bytes, headers: dict[str, str]) -> int:
    raw = [(key.encode(), str(value).encode("latin-1")) for key, value in headers.items()]
    if status != 204:  # a 204 has no body, and says no length either
        raw.append((b"Content-Length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
    return status


def _is_json(content_type: str) -> bool:
    """application/json, in UTF-8 (the only charset JSON has) if a charset is named at all."""
    media, _, params = content_type.partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"')
    return media.strip().lower() == "application/json" and charset in ("", "utf-8")


def _open_files_allowed() -> None:
    """As many connections as the system lets this process hold (the soft limit is often 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard != resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(state: StackState) -> None:
    os.environ.update(state.function_env())
    # The functions' clients come from boto3's default session (made at import, as in Lambda).
    session = botocore.session.get_session()
    session.set_default_client_config(Config(max_pool_connections=CONCURRENCY))
    boto3.setup_default_session(botocore_session=session)
    # The SQS stand-in's durability: the functions' sends are on disk before they leave. Before
    # the handlers load: the producer makes its client from boto3's default session at import.
    journal.install(state.run_dir)
    direct = profiles.named(state.consumer).direct  # the profile may put its own function there
    functions = {
        route: Function(name, load_handler(direct if name == "direct" and direct else spec))
        for route, (name, spec) in openapi.functions().items()
    }
    keys = cognito.jwks(state)
    authorizer = Authorizer(cognito.Verifier(keys, state.issuer, state.client_id))
    gateway = Gateway(authorizer, keys, functions)
    config = uvicorn.Config(
        gateway,
        host=state.bind_host,
        port=state.ports["api"],
        http=GatewayProtocol,
        ws="none",  # API Gateway's REST APIs switch to no other protocol
        interface="asgi3",
        lifespan="off",
        proxy_headers=False,  # the client's address is the peer's, as API Gateway's sourceIp
        server_header=False,
        access_log=False,  # the gateway's own line says it all
        log_config=None,
        timeout_keep_alive=IDLE_SECONDS,
        timeout_graceful_shutdown=STOP_SECONDS,
    )
    _open_files_allowed()
    log.info("gateway listening on %s", state.api_url)
    uvicorn.Server(config).run()  # until SIGTERM or SIGINT: then the requests in flight finish


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    serve(load(Path(os.environ["SANDBOX_RUN_DIR"])))
