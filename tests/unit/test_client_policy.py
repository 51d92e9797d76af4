"""The drill's client: how long it waits, when it retries, and what the guidance's own check
misses that the drill's account by order id does not."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sandbox.drills import drill
from sandbox.drills.targets import Commit
from sandbox.ops.load import Api, Client, ClientPolicy, Sent, send_orders


class Answering(BaseHTTPRequestHandler):
    """A test gateway: each POST is answered with ``status(order_id)``, an empty body."""

    def do_POST(self) -> None:
        order_id = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["order_id"]
        self.send_response(self.status(order_id))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def status(self, order_id: str) -> int:
        raise NotImplementedError

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[Api]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Api(f"http://127.0.0.1:{server.server_port}", "Bearer t")
    finally:
        server.shutdown()
        server.server_close()


class Flaky(Answering):
    """Answers each order id with the next status of its script (the last one from then on);
    0 in a script: hold the request past any client's timeout, then answer 202."""

    scripts: dict[str, list[int]]
    tries: dict[str, int]

    def status(self, order_id: str) -> int:
        tried = self.tries.get(order_id, 0)
        self.tries[order_id] = tried + 1
        script = self.scripts[order_id]
        status = script[min(tried, len(script) - 1)]
        if status == 0:
            time.sleep(1.0)
            status = 202
        return status


@pytest.fixture
def flaky() -> Iterator[tuple[Api, dict[str, list[int]], dict[str, int]]]:
    scripts: dict[str, list[int]] = {}
    tries: dict[str, int] = {}
    with serving(type("Handler", (Flaky,), {"scripts": scripts, "tries": tries})) as api:
        yield api, scripts, tries


def post(api: Api, policy: ClientPolicy, order_id: str) -> Sent:
    client = Client(api, policy)
    try:
        return client.post({"order_id": order_id})
    finally:
        client.close()


def test_a_client_that_never_retries_reports_the_first_failure(flaky) -> None:
    api, scripts, tries = flaky
    scripts["a"] = [503, 202]
    sent = post(api, ClientPolicy(retries=0), "a")
    assert (sent.status, sent.attempts, tries["a"]) == (503, 1, 1)


def test_a_retrying_client_sends_again_after_5xx_and_no_answer_until_acknowledged(flaky) -> None:
    api, scripts, tries = flaky
    scripts["b"] = [503, 0, 202]  # a 5xx, then held past the timeout, then accepted
    sent = post(api, ClientPolicy(timeout=0.3, retries=3, backoff=0.01), "b")
    assert (sent.status, sent.attempts, tries["b"]) == (202, 3, 3)
    assert sent.answered_at - sent.sent_at >= 0.3  # the wait is timed from the first attempt


def test_a_4xx_is_final_and_the_retries_are_bounded(flaky) -> None:
    api, scripts, tries = flaky
    scripts["c"], scripts["d"] = [400], [500]
    assert post(api, ClientPolicy(retries=5, backoff=0.0), "c").attempts == 1
    sent = post(api, ClientPolicy(retries=2, backoff=0.0), "d")
    assert (sent.status, sent.attempts, tries["d"]) == (500, 3, 3)


def test_a_policy_that_makes_no_sense_is_refused() -> None:
    for bad in ({"timeout": 0}, {"retries": -1}, {"backoff": -0.5}, {"in_flight": 0}):
        with pytest.raises(ValueError, match="client timeout"):
            ClientPolicy(**bad)


def test_the_guidances_check_passes_where_a_duplicate_hides_a_lost_order() -> None:
    """Three requests: one committed twice (a retry of a non-idempotent insert), one lost. The
    rows add up to the requests, so the guidance's check passes; the account says lost 1."""
    ledger = [Sent(f"o{i}", 202, 100.0 + i, 100.5 + i) for i in range(3)]
    rows = {"o0": Commit(rows=2), "o1": Commit(rows=1)}
    report = drill.account("queue", ledger, rows, set(), 0, fault_at=101.0)
    assert (report.committed_once, report.duplicates, report.lost) == (1, 1, 1)
    assert report.rows_written == 3 and report.guidance_check
    assert report.balanced  # every acknowledged order placed: one of them as lost


def test_the_guidances_check_fails_when_rows_are_missing_and_counts_the_dlq() -> None:
    ledger = [Sent(f"o{i}", 202, 100.0, 100.1) for i in range(3)]
    lost = drill.account("queue", ledger, {"o0": Commit()}, {"o1"}, 0, fault_at=None)
    assert (lost.rows_written, lost.in_dlq, lost.guidance_check) == (1, 1, False)
    parked = drill.account("queue", ledger, {"o0": Commit()}, {"o1", "o2"}, 0, fault_at=None)
    assert parked.guidance_check and parked.lost == 0


def test_the_client_sees_its_own_wait_and_the_retries_are_counted() -> None:
    ledger = [
        Sent("o0", 202, 100.0, 100.2),
        Sent("o1", 202, 100.0, 106.0, attempts=2),
        Sent("o2", 0, 100.0, 105.0, "ReadTimeout", attempts=2),
    ]
    report = drill.account("direct", ledger, {"o0": Commit(), "o1": Commit()}, set(), 0, None)
    assert report.retried == 2 and report.client_errors == 1
    assert report.client_wait_ms["p50"] == pytest.approx(3100.0)  # acknowledged ones only


class Barrier(Answering):
    """Answers no request until ``parties`` of them are waiting at once (or gives up)."""

    barrier: threading.Barrier

    def status(self, order_id: str) -> int:
        try:
            self.barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            return 503
        return 202


def test_as_many_requests_wait_at_once_as_the_client_lets() -> None:
    """The guidance's demo client sends each request on its own: 40 requests, none answered
    until all 40 wait at once, need a client that lets 40 wait (`ClientPolicy.in_flight`)."""
    handler = type("Handler", (Barrier,), {"barrier": threading.Barrier(40)})
    with serving(handler) as api:
        ledger = send_orders(api, 40, 200, policy=ClientPolicy(timeout=90, in_flight=40))
    assert sorted(s.status for s in ledger) == [202] * 40


def test_a_row_the_ledger_never_sent_unbalances_the_account() -> None:
    """What the counts alone cannot show: an answer the ledger dropped, its order stored."""
    ledger = [Sent("d-queue-000000", 202, 100.0, 100.1)]
    rows = {"d-queue-000000": Commit(), "d-queue-000001": Commit(), "d-direct-000000": Commit()}
    report = drill.account("queue", ledger, rows, set(), 0, None, ids="d-queue-")
    assert report.unexpected == 1 and not report.balanced  # the other path's row is not ours
    assert drill.account("queue", ledger, rows, set(), 0, None, ids="x-").balanced
