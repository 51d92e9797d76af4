"""The gateway's HTTP connections without a stack: its protocol (llhttp under uvicorn) fed what a
socket's reads would bring, in front of an application that records each request and answers it
when the test lets it. What a client may send, one request or several on one connection, and what
it gets back, in order. (The same on the running gateway: tests/integration/test_api_http.py.)"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable

import pytest
import uvicorn
from uvicorn.server import ServerState

from sandbox.standins.api_gateway.protocol import MAX_HEAD, SLICE, GatewayProtocol

HEAD = b"POST /orders HTTP/1.1\r\nHost: x\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
GET = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
SLOW = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"  # answered once the test opens the gate
BOUND = 10.0  # seconds a condition may take before the test fails: generous, never a timing


def post(length: int, path: bytes = b"/orders") -> bytes:
    return HEAD.replace(b"/orders", path) + b"Content-Length: %d\r\n\r\n" % length


class Transport(asyncio.Transport):
    """A connection's server end: what the protocol writes, and whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written, self.closed = b"", False
        self.sends: list[bytes] = []  # each write: a send on a socket

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 80)}.get(name, default)

    def write(self, data) -> None:
        assert not self.closed, "written after the connection closed"
        self.written += bytes(data)
        self.sends.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Connection:
    """One client connection to the protocol, and the application behind it: it reads each
    request's body whole and answers 200 with the body's length (and the names of its headers);
    on a path beginning ``/slow``, once ``gate`` is open."""

    def __init__(self, idle_seconds: float = 30) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self.headers: list[list[bytes]] = []
        self.heard: list[str] = []  # what an application listening after the body heard
        self.gate = asyncio.Event()
        config = uvicorn.Config(
            self.app, http=GatewayProtocol, ws="none", log_config=None, interface="asgi3",
            timeout_keep_alive=idle_seconds,
        )  # fmt: skip
        self.protocol = GatewayProtocol(config, ServerState(), {}, asyncio.get_running_loop())
        self.transport = Transport()
        self.protocol.connection_made(self.transport)

    async def app(self, scope, receive, send) -> None:
        body = b""
        while (message := await receive())["type"] == "http.request":
            body += message["body"]
            if not message["more_body"]:
                break
        else:
            return  # the client went away, or the request was refused
        self.requests.append((scope["method"], scope["path"], body))
        self.headers.append([name for name, _ in scope["headers"]])
        if scope["path"] == "/listen":  # an application that waits to hear the client has gone
            self.heard.append((await receive())["type"])
            return
        if scope["path"].startswith("/slow"):
            await self.gate.wait()
        answer = json.dumps({"length": len(body)}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["path"] == "/broken":  # an application that fails once its answer has begun
            raise RuntimeError("the application failed mid-answer")
        await send({"type": "http.response.body", "body": answer})

    def send(self, data: bytes) -> None:
        """``data`` as one read of the socket."""
        self.protocol.data_received(data)

    def statuses(self) -> list[int]:
        return [
            int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", self.transport.written)
        ]

    def refusal(self) -> tuple[int, str]:
        """The last answer, which must be a JSON refusal that closes the connection."""
        last = [*re.finditer(rb"HTTP/1\.1 \d{3} ", self.transport.written)][-1].start()
        head, _, body = self.transport.written[last:].partition(b"\r\n\r\n")
        assert b"Content-Type: application/json" in head and b"Connection: close" in head, head
        assert self.transport.closed
        return int(head.split()[1]), json.loads(body)["message"]


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``condition`` holds; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {BOUND:.0f} s"
        await asyncio.sleep(0.001)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "request line over"),
        (b"GET /" + b"a" * 65_546 + b" HTTP/1.1\r\n\r\n", 414, "request line over"),
        # A slice's end within the method (llhttp skips line ends between requests).
        (b"\n" * 1023 + b"PROPPATCH /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "line over"),
        (HEAD + b"X-Padding: " + b"a" * 70_000 + b"\r\n\r\n", 431, "headers over"),
        (HEAD + b"Transfer-Encoding: gzip\r\n\r\n{}", 501, "not supported"),
        (HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "not supported"),
        (HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\n{}", 501, "not supported"),
        (HEAD + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 400, "not both"),
        (CHUNKED + b"zz\r\n{}\r\n0\r\n\r\n", 400, "malformed chunked"),
        (CHUNKED + b"2\r\n{}XX0\r\n\r\n", 400, "malformed chunked"),
        (HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "twice"),
        (HEAD + b"Content-Length: -1\r\n\r\n{}", 400, "not a length"),
        (b"hello\r\n\r\n", 400, "not an HTTP/1.1 request"),
        (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "not an HTTP/1.1 request"),
    ],
    ids=[
        "line", "line ending past the bound", "line of a long method",
        "headers", "gzip", "gzip+chunked", "chunked+gzip", "both", "chunk size", "chunk end",
        "two lengths", "length", "not http", "not ascii",
    ],
)  # fmt: skip
@pytest.mark.parametrize("read", [4 * SLICE, 256 * 1024], ids=["small reads", "one read"])
def test_each_refused_request_gets_its_status_and_why_never_the_gateway(data, status, says, read):
    async def test() -> None:
        conn = Connection()
        for start in range(0, len(data), read):
            if not conn.transport.closed:
                conn.send(data[start : start + read])
        await asyncio.sleep(0)  # a request let through would reach the application now
        got, message = conn.refusal()
        assert (got, conn.requests) == (status, [])
        assert says in message

    run(test)


def test_a_refusal_on_a_kept_connection_after_an_answer_is_json_too():
    async def test() -> None:
        conn = Connection()
        conn.send(GET)
        await until(lambda: conn.statuses() == [200], "the first request answered")
        conn.send(HEAD + b"Transfer-Encoding: gzip\r\n\r\n")
        assert conn.refusal()[0] == 501

    run(test)


def test_a_refused_pipelined_request_is_answered_after_the_ones_before_it():
    async def test() -> None:
        conn = Connection()
        conn.send(SLOW + post(2) + b"{}" + b"hello\r\n\r\n")  # two requests, then not HTTP
        await until(lambda: len(conn.requests) == 1, "the first request reached the application")
        assert (conn.transport.written, conn.transport.closed) == (b"", False)
        conn.gate.set()
        await until(lambda: conn.transport.closed, "the connection closed after the refusal")
        assert conn.statuses() == [200, 200, 400]
        assert [path for _, path, _ in conn.requests] == ["/slow", "/orders"]
        assert conn.refusal() == (400, "not an HTTP/1.1 request: Invalid method encountered")

    run(test)


def test_a_request_stalled_behind_a_pipelined_one_is_closed_after_the_idle_timeout():
    async def test() -> None:
        conn = Connection(idle_seconds=0.05)
        conn.send(GET + post(10) + b'{"a"')  # the second body never ends
        await until(lambda: conn.transport.closed, "the stalled connection closed")
        assert conn.statuses() == [200]

    run(test)


def test_a_whole_request_awaiting_its_answer_is_never_timed_out():
    async def test() -> None:
        conn = Connection(idle_seconds=0.01)
        conn.send(post(2, b"/slow") + b"{}")
        await until(lambda: conn.requests, "the request reached the application")
        await asyncio.sleep(0.1)  # ten idle timeouts
        assert not conn.transport.closed
        conn.gate.set()
        await until(lambda: conn.statuses() == [200], "the request answered")

    run(test)


@pytest.mark.parametrize("then", [b"", b"GET /hea"], ids=["nothing more", "part of a head"])
def test_a_half_close_after_a_request_gets_its_answer_then_the_connection_closes(then):
    async def test() -> None:
        conn = Connection()
        conn.send(SLOW + then)
        assert conn.protocol.eof_received() is True  # the transport stays open for the answer
        await until(lambda: conn.requests, "the request reached the application")
        assert not conn.transport.closed
        conn.gate.set()
        await until(lambda: conn.transport.closed, "the connection closed after the answer")
        assert conn.statuses() == [200]

    run(test)


def test_a_half_close_with_no_request_begun_closes_at_once():
    async def test() -> None:
        conn = Connection()
        conn.send(b"GET /hea")
        conn.protocol.eof_received()
        assert (conn.transport.closed, conn.transport.written) == (True, b"")

    run(test)


def test_a_head_that_begins_where_a_body_ends_is_bounded_too():
    async def test() -> None:
        conn = Connection()
        conn.send(post(5))
        conn.send(b"12345" + b"GET /x HTTP/1.1\r\nX: " + b"a" * (2 * MAX_HEAD) + b"\r\n\r\n")
        await until(lambda: conn.transport.closed, "the connection closed")
        assert conn.statuses() == [200, 431]
        assert conn.requests == [("POST", "/orders", b"12345")]

    run(test)


def test_a_long_body_and_the_next_request_in_one_read_are_both_answered():
    async def test() -> None:
        conn = Connection()
        conn.send(post(3 * MAX_HEAD))
        conn.send(b"a" * 3 * MAX_HEAD + GET)
        await until(lambda: len(conn.statuses()) == 2, "both requests answered")
        assert conn.statuses() == [200, 200]
        assert [len(body) for _, _, body in conn.requests] == [3 * MAX_HEAD, 0]
        assert not conn.transport.closed

    run(test)


def test_a_request_to_switch_protocols_is_answered_as_http_then_closed():
    async def test() -> None:
        conn = Connection()
        upgrade = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        conn.send(GET.replace(b"\r\n\r\n", b"\r\n" + upgrade + b"\r\n") + GET)
        await until(lambda: conn.transport.closed, "the connection closed after the answer")
        assert conn.statuses() == [200]  # what followed it is never read as a request
        empty = Connection()
        empty.send(
            post(0)
            .replace(b"Length: 0", b"Length: 00")
            .replace(b"\r\n\r\n", b"\r\n" + upgrade + b"\r\n")
        )
        await until(lambda: empty.transport.closed, "the empty one answered, then closed")
        assert empty.statuses() == [200]
        body = Connection()
        body.send(post(2).replace(b"\r\n\r\n", b"\r\n" + upgrade + b"\r\n") + b"{}")
        await asyncio.sleep(0)
        assert body.refusal() == (400, "a request with a body cannot ask to switch protocols")
        assert body.requests == []

    run(test)


def test_a_connection_owed_answers_is_not_timed_out_behind_a_held_refusal_or_a_half_close():
    async def test() -> None:
        held, half = Connection(idle_seconds=0.01), Connection(idle_seconds=0.01)
        held.send(GET + SLOW + b"hello\r\n\r\n")  # answered, owed, then refused
        half.send(SLOW + b"GET /hea")
        half.protocol.eof_received()
        await until(lambda: len(held.requests) == 2 and half.requests, "both slow requests read")
        await asyncio.sleep(0.1)  # ten idle timeouts
        assert (held.transport.closed, half.transport.closed) == (False, False)
        held.gate.set()
        half.gate.set()
        await until(lambda: held.transport.closed and half.transport.closed, "both closed")
        assert held.statuses() == [200, 200, 400]
        assert half.statuses() == [200]

    run(test)


def test_a_server_stopping_still_sends_a_held_refusal_after_the_answer_before_it():
    async def test() -> None:
        conn = Connection()
        conn.send(SLOW + b"hello\r\n\r\n")
        await until(lambda: conn.requests, "the slow request read")
        conn.protocol.shutdown()
        conn.gate.set()
        await until(lambda: conn.transport.closed, "the connection closed")
        assert conn.statuses() == [200, 400]

    run(test)


def test_a_body_left_unfinished_by_a_half_close_closes_the_connection_at_once():
    async def test() -> None:
        conn = Connection()
        conn.send(post(10) + b"abcd")
        conn.protocol.eof_received()
        await asyncio.sleep(0)  # the application learns the client is gone
        assert (conn.transport.closed, conn.transport.written, conn.requests) == (True, b"", [])

    run(test)


@pytest.mark.parametrize(
    "then",
    [b"X-T: " + b"a" * (2 * MAX_HEAD) + b"\r\n\r\n", b"X-T: a\r\n" * (MAX_HEAD // 4)],
    ids=["one trailer", "many trailers"],
)
def test_a_chunked_bodys_trailers_are_bounded_and_never_taken_for_headers(then):
    async def test() -> None:
        conn = Connection()
        conn.send(CHUNKED + b"2\r\n{}\r\n0\r\nX-Sum: 1\r\n\r\n")
        await until(lambda: conn.statuses() == [200], "the request with a trailer answered")
        assert b"x-sum" not in conn.headers[0]
        conn.send(CHUNKED + b"2\r\n{}\r\n0\r\n" + then)
        await until(lambda: conn.transport.closed, "the connection closed")
        assert conn.refusal() == (431, f"chunk framing or trailers over {MAX_HEAD} bytes")
        assert len(conn.requests) == 1

    run(test)


def test_a_body_of_many_small_chunks_is_read_whole():
    async def test() -> None:
        conn = Connection()
        chunks = b"1\r\na\r\n" * (2 * MAX_HEAD // 6)
        conn.send(CHUNKED + chunks + b"0\r\n\r\n")
        await until(lambda: conn.statuses() == [200], "the request answered")
        assert len(conn.requests[0][2]) == 2 * MAX_HEAD // 6

    run(test)


def test_a_client_gone_is_heard_by_the_request_being_answered_not_only_the_latest():
    async def test() -> None:
        conn = Connection()
        conn.send(GET.replace(b"/health", b"/listen") + GET)  # the second one waits its turn
        await until(lambda: conn.requests, "the first request reached the application")
        conn.protocol.connection_lost(ConnectionResetError())
        await until(lambda: conn.heard == ["http.disconnect"], "the application heard it")

    run(test)


def test_an_answer_leaves_in_one_send_and_a_head_answer_at_once():
    """uvicorn writes an answer's head and body apart: two system calls, two packets."""

    async def test() -> None:
        connection = Connection()
        connection.send(GET)
        await until(lambda: len(connection.transport.sends) == 1, "the answer")
        head, _, body = connection.transport.sends[0].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body) == {"length": 0}
        connection.send(GET.replace(b"GET", b"HEAD"))  # no body follows its head: never held
        await until(lambda: len(connection.transport.sends) == 2, "the answer to HEAD")
        assert connection.transport.sends[1].endswith(b"\r\n\r\n")
        connection.send(GET)
        await until(lambda: connection.statuses() == [200, 200, 200], "the next answer")

    run(test)


def test_a_100_continue_leaves_before_the_answer_and_a_failed_answer_sends_its_head():
    async def test() -> None:
        connection = Connection()
        connection.send(post(2).replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
        await until(lambda: connection.transport.sends, "the 100 Continue")
        assert connection.transport.sends == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        connection.send(b"{}")
        await until(lambda: len(connection.transport.sends) == 2, "the answer")
        assert json.loads(connection.transport.sends[1].partition(b"\r\n\r\n")[2]) == {"length": 2}
        connection.send(GET.replace(b"/health", b"/broken"))
        await until(lambda: connection.transport.closed, "the failed answer's close")
        assert connection.transport.sends[2].startswith(b"HTTP/1.1 200 ")  # as it began

    run(test)
