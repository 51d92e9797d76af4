"""What an HTTP client may legitimately send, on the real gateway: answered correctly or refused
with a clear 4xx and a JSON message; and many idle or slow connections never keep others waiting.
Raw sockets where a client library would tidy the request up."""

from __future__ import annotations

import json
import re
import resource
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from sandbox import stack
from sandbox.ops import dlq
from sandbox.ops.load import order
from sandbox.standins import cognito
from tests.conftest import committed, wait_drained

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(live) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {cognito.issue_token(live)}"}
    with httpx.Client(base_url=live.api_url, timeout=30, headers=headers) as client:
        yield client


def raw(live, request: bytes, *, read_until_close: bool = True) -> tuple[int, httpx.Headers, bytes]:
    """Send ``request`` as bytes; the status, headers (their names in any case, as HTTP has them)
    and body of the (first) answer."""
    with socket.create_connection(("127.0.0.1", live.ports["api"]), timeout=30) as conn:
        conn.sendall(request)
        if read_until_close:
            conn.shutdown(socket.SHUT_WR)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _length(data):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = httpx.Headers([tuple(line.split(": ", 1)) for line in lines[1:]])
    return int(lines[0].split()[1]), headers, body


def _length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":")[1])
    return 0


def post(live, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    token = cognito.issue_token(live)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}"]
    lines += [f"{key}: {value}" for key, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_a_chunked_body_is_read_and_queued(live):
    body = json.dumps(order(f"chunk-{uuid.uuid4().hex[:8]}")).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]))
    status, _, answer = raw(
        live,
        post(live, "/orders", chunks + b"0\r\n\r\n", JSON | {"Transfer-Encoding": "chunked"}),
    )
    assert status == 202, answer
    assert wait_drained(live, json.loads(body)["order_id"], 1) == {json.loads(body)["order_id"]: 1}


def test_a_malformed_chunked_body_is_a_400(live):
    request = post(
        live, "/orders", b"zz\r\n{}\r\n0\r\n\r\n", JSON | {"Transfer-Encoding": "chunked"}
    )
    status, _, answer = raw(live, request)
    assert (status, json.loads(answer)["message"]) == (400, "malformed chunked body")


def test_expect_100_continue_gets_a_continue_then_the_answer(live):
    body = json.dumps(order(f"expect-{uuid.uuid4().hex[:8]}")).encode()
    head = post(live, "/orders", b"", JSON | {"Content-Length": str(len(body))})
    head = head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n")
    with socket.create_connection(("127.0.0.1", live.ports["api"]), timeout=30) as conn:
        conn.sendall(head)
        assert conn.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.sendall(body)
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 202")


def test_expect_100_continue_with_a_body_too_large_is_refused_before_it_is_sent(live):
    headers = JSON | {"Content-Length": str(20 * 1024 * 1024), "Expect": "100-continue"}
    status, answer_headers, answer = raw(live, post(live, "/orders", b"", headers))
    assert status == 413
    assert answer_headers["Connection"] == "close"
    assert "body over" in json.loads(answer)["message"]


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_a_body_not_declared_as_json_is_a_415(api, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(order(f"ctype-{uuid.uuid4().hex[:8]}"))
    reply = api.post("/orders", content=body, headers=headers)
    assert reply.status_code == 415
    assert "application/json" in reply.json()["message"]


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=UTF-8"])
def test_json_with_or_without_its_charset_is_accepted(api, content_type):
    body = json.dumps(order(f"ctype-{uuid.uuid4().hex[:8]}"))
    assert (
        api.post("/orders", content=body, headers={"Content-Type": content_type}).status_code == 202
    )


def test_a_body_that_is_not_utf8_is_a_400(api):
    reply = api.post("/orders", content=b'{"note": "\xff\xfe"}', headers=JSON)
    assert (reply.status_code, reply.json()["message"]) == (400, "the body is not valid UTF-8")


@pytest.mark.parametrize("length", ["abc", "-1", "1, 2"])
def test_a_content_length_that_is_no_length_is_a_400(live, length):
    status, _, answer = raw(live, post(live, "/orders", b"{}", JSON | {"Content-Length": length}))
    assert status == 400
    assert "Content-Length" in json.loads(answer)["message"]


def test_content_length_and_chunked_together_are_refused(live):
    headers = JSON | {"Content-Length": "5", "Transfer-Encoding": "chunked"}
    status, _, answer = raw(live, post(live, "/orders", b"0\r\n\r\n", headers))
    assert status == 400
    assert "not both" in json.loads(answer)["message"]


@pytest.mark.parametrize(
    ("header", "status"),
    [("X-Padding: " + "a" * 70_000, 431), ("\r\n".join(f"X-{n}: v" for n in range(120)), 431)],
    ids=["one header line too long", "too many headers"],
)
def test_oversized_headers_are_a_431_in_json(live, header, status):
    request = f"GET /health HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n".encode()
    got, headers, answer = raw(live, request)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert json.loads(answer)["message"]


def test_a_request_line_too_long_is_a_414(live):
    status, _, answer = raw(live, f"GET /{'a' * 70_000} HTTP/1.1\r\n\r\n".encode())
    assert status == 414
    assert json.loads(answer)["message"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "TRACE"])
def test_a_wrong_method_on_a_known_path_is_a_405_with_allow(api, method):
    reply = api.request(method, "/orders")
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "POST"
    assert "use POST" in reply.json()["message"]


def test_options_lists_the_methods_of_a_path(api):
    reply = api.options("/direct/orders")
    assert (reply.status_code, reply.headers["Allow"]) == (204, "POST, OPTIONS")
    assert "Content-Length" not in reply.headers  # a 204 says no length


def test_head_is_get_without_a_body(api):
    reply = api.head("/health")
    assert (reply.status_code, reply.content) == (200, b"")
    assert int(reply.headers["Content-Length"]) > 0


@pytest.mark.parametrize(("method", "path"), [("POST", "/nope"), ("GET", "/"), ("GET", "/order")])
def test_unknown_paths_are_a_404(api, method, path):
    reply = api.request(method, path)
    assert reply.status_code == 404
    assert "no route" in reply.json()["message"]


def test_idle_and_slow_connections_do_not_keep_other_clients_waiting(live, api):
    """200 connections that send nothing and 50 that trickle a request a byte at a time: new
    clients are still answered while every one of them is held open."""
    stop = threading.Event()
    with ExitStack() as hold:
        idle = [hold.enter_context(connect(live)) for _ in range(200)]
        slow = [hold.enter_context(connect(live)) for _ in range(50)]
        trickle = threading.Thread(target=dribble, args=(slow, stop), daemon=True)
        trickle.start()
        try:
            prefix = f"busy-{uuid.uuid4().hex[:6]}"
            answers = [
                api.post("/orders", json=order(f"{prefix}-{n}")).status_code for n in range(20)
            ]
            assert answers == [202] * 20
            assert [still_open(conn) for conn in idle + slow] == [True] * 250
        finally:
            stop.set()
            trickle.join()
    assert wait_drained(live, prefix, 20) == {f"{prefix}-{n}": 1 for n in range(20)}


def test_a_thousand_idle_keep_alive_connections_do_not_stop_another_client(live, api):
    """1,000 clients that each had an answer and keep their connection, silent: another client is
    still answered, within the client's own generous timeout (30 s), while every one is held."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:  # the sockets are this process's files too
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    with ExitStack() as hold:
        idle = [hold.enter_context(connect(live)) for _ in range(1000)]
        for conn in idle:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [answer_on(conn) for conn in idle] == [b"200"] * 1000
        body = order(f"idle-{uuid.uuid4().hex[:8]}")
        assert api.post("/orders", json=body).status_code == 202
        assert [still_open(conn) for conn in idle] == [True] * 1000
    assert wait_drained(live, body["order_id"], 1) == {body["order_id"]: 1}


def answer_on(conn: socket.socket) -> bytes:
    """The status of the one answer on a kept connection, read whole."""
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _length(data):
        if not (chunk := conn.recv(65536)):
            return b"closed"
        data += chunk
    return data.split(b" ", 2)[1]


def connect(live) -> socket.socket:
    return socket.create_connection(("127.0.0.1", live.ports["api"]), timeout=30)


def dribble(conns: list[socket.socket], stop: threading.Event) -> None:
    """One byte of a request to each connection, then the next, until told to stop (or 60 s)."""
    request = b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    for byte in request[: min(len(request), 120)]:
        for conn in conns:
            conn.sendall(bytes([byte]))
        if stop.wait(0.2):
            return


def still_open(conn: socket.socket) -> bool:
    """Open and silent: nothing to read yet, and no end of stream from the gateway."""
    conn.setblocking(False)  # a socket with a timeout would wait for data instead
    try:
        return conn.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True


def test_a_body_on_a_request_that_needs_none_is_not_read_as_the_next_request(live):
    smuggled = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    first = b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
    then = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with connect(live) as conn:
        conn.sendall(first + smuggled + then)
        answers = b""
        while chunk := conn.recv(65536):
            answers += chunk
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answers) == [b"200", b"200"]  # no 404 for /nope


@pytest.mark.parametrize(
    ("headers", "body", "status", "says"),
    [
        ({"Transfer-Encoding": "gzip"}, b"{}", 501, "not supported"),
        ({"Transfer-Encoding": "gzip, chunked"}, b"0\r\n\r\n", 501, "not supported"),
        ({"Transfer-Encoding": "chunked"}, b"-1\r\n{}\r\n0\r\n\r\n", 400, "malformed"),
        ({"Transfer-Encoding": "chunked"}, b"0x2\r\n{}\r\n0\r\n\r\n", 400, "malformed"),
        ({"Transfer-Encoding": "chunked"}, b"2\r\n{}XX0\r\n\r\n", 400, "malformed"),
        ({"Content-Length": "\u00b2"}, b"{}", 400, "not a length"),
        ({"Content-Length": "9" * 5000}, b"{}", 400, "not a length"),
    ],
    ids=["gzip", "gzip+chunked", "negative chunk", "0x chunk", "no CRLF", "superscript", "huge"],
)
def test_an_ambiguous_body_is_refused_never_guessed(live, headers, body, status, says):
    got, answer_headers, answer = raw(live, post(live, "/orders", body, JSON | headers))
    assert got == status
    assert says in json.loads(answer)["message"]
    assert answer_headers["Connection"] == "close"


def test_two_different_content_lengths_are_refused(live):
    head = b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n"
    status, _, answer = raw(live, head + b"{}")
    assert status == 400
    assert "twice" in json.loads(answer)["message"]


@pytest.mark.parametrize("line", [b"hello", b"GET / HTTP/9.9", b"GET http://[/health HTTP/1.1"])
def test_a_broken_request_line_gets_a_status_line_and_json(live, line):
    status, headers, answer = raw(live, line + b"\r\nHost: x\r\n\r\n")
    assert 400 <= status < 506
    assert headers["Content-Type"] == "application/json"
    assert json.loads(answer)["message"]


def test_the_same_order_sent_again_is_one_order_with_one_message(live, api):
    body = order(f"again-{uuid.uuid4().hex[:8]}", amount="9.5")
    first = api.post("/orders", json=body).json()
    again = api.post("/orders", json=body | {"amount": "9.50"}).json()  # the same amount
    assert first["message_id"] == again["message_id"]
    assert wait_drained(live, body["order_id"], 1) == {body["order_id"]: 1}


def test_a_different_order_under_a_used_id_is_parked_as_a_conflict_not_dropped(live, api):
    """202 (the API does not read the database), then the first order stands and the second is
    visible in the DLQ with the reason, never deduplicated away in silence."""
    body = order(f"reuse-{uuid.uuid4().hex[:8]}", customer_id=3)
    first = api.post("/orders", json=body)
    assert wait_drained(live, body["order_id"], 1) == {body["order_id"]: 1}
    second = api.post("/orders", json=body | {"customer_id": 4})
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["message_id"] != second.json()["message_id"]
    deadline = time.monotonic() + 300
    while not (parked := [p for p in dlq.peek(live) if p.order_id == body["order_id"]]):
        assert time.monotonic() < deadline, "the conflicting order never reached the DLQ"
        time.sleep(0.5)
    assert json.loads(parked[0].body)["customer_id"] == 4
    assert "already holds a different order" in parked[0].last_error
    assert committed(live, body["order_id"]) == {body["order_id"]: 1}
    dlq.purge(live)  # the workshop's call; here, so later tests start with a clean DLQ
    assert not [p for p in dlq.peek(live) if p.order_id == body["order_id"]]
    assert stack.queued(live) == (0, 0)


def test_the_direct_path_answers_a_retry_200_and_a_conflict_409(api):
    body = order(f"direct-{uuid.uuid4().hex[:8]}")
    replies = [
        api.post("/direct/orders", json=body),
        api.post("/direct/orders", json=body),
        api.post("/direct/orders", json=body | {"customer_id": body["customer_id"] % 1000 + 1}),
    ]
    assert [reply.status_code for reply in replies] == [201, 200, 409]
    assert replies[1].json()["message"] == "already committed"
    assert replies[2].json()["field"] == "order_id"
