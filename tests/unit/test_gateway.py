"""The gateway's own parts without a stack: what each request its HTTP protocol refuses is
answered with, and the authorizer's cache of verified tokens."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import uvicorn
from uvicorn.server import ServerState

from sandbox.standins import cognito
from sandbox.standins.api_gateway.protocol import SLICE, GatewayProtocol
from sandbox.standins.api_gateway.server import AUTH_CACHE_SECONDS, Authorizer

HEAD = b"POST /orders HTTP/1.1\r\nHost: x\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"


class Transport(asyncio.Transport):
    """A client connection's server end: what the protocol writes, and whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written, self.closed = b"", False

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 80)}.get(name, default)

    def write(self, data) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def never_called(scope, receive, send) -> None:
    raise AssertionError("a refused request reached the gateway")


def refused(data: bytes) -> tuple[int, str]:
    """Send ``data`` to the gateway's protocol as reads of a socket (a slice at a time, as a
    slow client's would arrive) until it answers: the status and message of its answer."""

    async def connection() -> Transport:
        config = uvicorn.Config(never_called, http=GatewayProtocol, ws="none", log_config=None)
        protocol = GatewayProtocol(config, ServerState(), {}, asyncio.get_running_loop())
        transport = Transport()
        protocol.connection_made(transport)
        for start in range(0, len(data), 4 * SLICE):
            if not transport.closed:
                protocol.data_received(data[start : start + 4 * SLICE])
        await asyncio.sleep(0)  # a request that was not refused would reach the application
        return transport

    transport = asyncio.run(connection())
    assert transport.closed
    head, _, body = transport.written.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head
    return int(head.split()[1]), json.loads(body)["message"]


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "request line over"),
        (HEAD + b"X-Padding: " + b"a" * 70_000 + b"\r\n\r\n", 431, "headers over"),
        (HEAD + b"Transfer-Encoding: gzip\r\n\r\n{}", 501, "not supported"),
        (HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "not supported"),
        (HEAD + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 400, "not both"),
        (CHUNKED + b"zz\r\n{}\r\n0\r\n\r\n", 400, "malformed chunked"),
        (CHUNKED + b"2\r\n{}XX0\r\n\r\n", 400, "malformed chunked"),
        (HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "twice"),
        (HEAD + b"Content-Length: -1\r\n\r\n{}", 400, "not a length"),
        (b"hello\r\n\r\n", 400, "not an HTTP/1.1 request"),
    ],
    ids=[
        "line",
        "headers",
        "gzip",
        "gzip+chunked",
        "both",
        "chunk size",
        "chunk end",
        "two lengths",
        "length",
        "not http",
    ],
)
def test_each_request_refused_before_the_gateway_gets_its_status_and_why(data, status, says):
    got, message = refused(data)
    assert got == status
    assert says in message


class Counting:
    """A verifier that counts its calls and accepts one token."""

    def __init__(self, expires: float) -> None:
        self.calls = 0
        self.expires = expires

    def verify(self, authorization: str | None) -> dict:
        self.calls += 1
        if authorization != "Bearer good":
            raise cognito.Unauthorized("invalid token")
        return {"sub": "u", "exp": self.expires}


def test_a_token_is_verified_once_a_refusal_every_time():
    verifier = Counting(expires=time.time() + 3600)
    authorizer = Authorizer(verifier)  # type: ignore[arg-type]
    for _ in range(3):
        assert authorizer.claims("Bearer good")["sub"] == "u"
        with pytest.raises(cognito.Unauthorized):
            authorizer.claims("Bearer bad")
    assert verifier.calls == 1 + 3


def test_a_cached_token_is_verified_again_once_it_expires(monkeypatch):
    now = time.time()
    verifier = Counting(expires=now + 60)  # before the cache's own time is up
    assert AUTH_CACHE_SECONDS > 60
    authorizer = Authorizer(verifier)  # type: ignore[arg-type]
    for later, calls in ((0, 1), (59, 1), (61, 2)):
        monkeypatch.setattr(time, "time", lambda later=later: now + later)
        authorizer.claims("Bearer good")
        assert verifier.calls == calls, later


def test_a_function_throttles_beyond_its_instances_and_is_not_waited_for_past_its_timeout(
    monkeypatch,
):
    """As Lambda behind API Gateway: an invocation beyond the instances is refused at once (no
    queue to grow while a dependency hangs), one that runs too long is answered 504 while its
    instance runs on, and counts as busy until it ends."""
    import asyncio
    import threading

    from sandbox.standins.api_gateway import server

    monkeypatch.setattr(server, "CONCURRENCY", 2)
    monkeypatch.setattr(server, "FUNCTION_TIMEOUT", 0.2)
    release = threading.Event()
    function = server.Function("producer", lambda event, context: release.wait(30) and "done")

    async def scenario() -> list[str]:
        said = []
        first = asyncio.ensure_future(function.invoke({}))
        second = asyncio.ensure_future(function.invoke({}))
        await asyncio.sleep(0)
        with pytest.raises(server.Throttled):
            await function.invoke({})
        for call in (first, second):
            with pytest.raises(TimeoutError):
                await call
        said.append(f"busy after the timeout: {function.running}")
        release.set()
        while function.running:  # the instances end their invocations
            await asyncio.sleep(0.01)
        said.append(await function.invoke({}))
        return said

    assert asyncio.run(scenario()) == ["busy after the timeout: 2", "done"]
