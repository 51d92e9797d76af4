"""What one order's answer tells its sender: a 202's SQS message id (`sandbox send` prints it),
and, when the API never answered, the one sentence the CLI and the dashboard both say."""

from __future__ import annotations

import json
import socket
from typing import Any

from sandbox.ops.load import Api, Client, Sent
from tests.unit.test_client_policy import Answering, serving


class Queued(Answering):
    """The producer's 202: the order id and the SQS message it is in."""

    def do_POST(self) -> None:
        order_id = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["order_id"]
        body = json.dumps({"order_id": order_id, "message_id": f"m-{order_id}"}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def post(api: Api, body: dict[str, Any]) -> Sent:
    client = Client(api)
    try:
        return client.post(body)
    finally:
        client.close()


def test_a_202_keeps_the_message_id_the_api_answered():
    with serving(Queued) as api:
        sent = post(api, {"order_id": "a1"})
    assert (sent.status, sent.message_id, sent.error) == (202, "m-a1", "")


def test_a_refused_connection_is_a_sentence_that_says_nothing_was_sent_and_what_to_run():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"  # bound, not listening: refused
        sent = post(Api(url, "Bearer t"), {"order_id": "a2"})
    said = sent.unanswered(url)
    assert sent.status == 0 and sent.error == "ConnectError"
    assert said.startswith(f"the API at {url} refused the connection: the order was not sent.")
    assert "status` says what is down; `make up` repairs it" in said


def test_no_answer_after_sending_says_the_order_may_be_queued_and_a_resend_is_safe():
    said = Sent("a3", 0, 0.0, 0.0, "ReadTimeout").unanswered("http://127.0.0.1:1")
    assert said == (
        "the API at http://127.0.0.1:1 did not answer (ReadTimeout): order a3 may or may not be "
        "queued; the same order sent again under that --order-id is safe (an id commits once)"
    )
