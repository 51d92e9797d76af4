"""The SQS stand-in's journal and what a restore makes of it, without LocalStack or a database:
which messages go back to the queue, which to the DLQ, which stay away."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from sandbox.spec.queue import QueueSettings
from sandbox.standins.sqs import journal, restore


def fake_state(run_dir: Path) -> SimpleNamespace:
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(
        run_dir=str(run_dir),
        queue=QueueSettings(max_receive_count=5),
        path=lambda *parts: Path(run_dir, *parts),
    )


def failed(state: SimpleNamespace, order_id: str, receive_count: int, at: str) -> None:
    """A line of the consumer's log as Powertools writes it."""
    line = {
        "message": "order failed",
        "timestamp": f"2026-12-07 {at},000+0000",
        "order_id": order_id,
        "error": "boom",
        "receive_count": receive_count,
    }
    with state.path("logs", "consumer.log").open("a") as log:
        log.write(json.dumps(line) + "\n")


def epoch(at: str) -> float:
    from datetime import datetime

    return datetime.strptime(f"2026-12-07 {at}+0000", "%Y-%m-%d %H:%M:%S%z").timestamp()


def test_a_send_is_on_disk_before_it_leaves_and_a_failed_write_stops_it(tmp_path):
    sqs = boto3.Session().client(
        "sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    journal.watch(sqs.meta.events, str(tmp_path))
    url = "http://localhost/queue/orders.fifo"
    with Stubber(sqs) as stub:
        stub.add_response("send_message", {"MessageId": "m1"})
        sqs.send_message(QueueUrl=url, MessageBody='{"order_id": "a"}', MessageGroupId="a")
    (entry,) = journal.read(str(tmp_path)).messages.values()
    assert (entry["queue"], entry["group"], entry["body"]) == (url, "a", '{"order_id": "a"}')
    journal.path(str(tmp_path)).unlink()
    journal.path(str(tmp_path)).mkdir()  # the write fails: the send must not happen
    with Stubber(sqs) as stub:
        stub.add_response("send_message", {"MessageId": "m2"})
        with pytest.raises(IsADirectoryError):
            sqs.send_message(QueueUrl=url, MessageBody='{"order_id": "b"}', MessageGroupId="b")
        with pytest.raises(AssertionError):  # its answer is still waiting: it never went
            stub.assert_no_pending_responses()


def test_a_line_cut_short_by_a_crash_is_skipped_and_the_rest_read(tmp_path):
    run_dir = str(tmp_path)
    journal.append(run_dir, {"queue": "q", "body": '{"order_id": "a"}', "group": "a"})
    with journal.path(run_dir).open("a") as out:
        out.write('{"t": 1, "queue": "q", "bo')
    assert list(journal.read(run_dir).messages) == ["a"]


@pytest.mark.parametrize(
    ("receives", "marks", "where"),
    [
        (4, {}, "queue"),  # receives left: back in the queue
        (5, {}, "dlq"),  # its last receive: parked, or on its way there
        (5, {"redriven": "10:00:02"}, "queue"),  # parked, then redriven
        (5, {"purged": "10:00:02"}, "gone"),  # parked, then thrown away on purpose
        (5, {"purged": "10:00:00", "redriven": "10:00:00"}, "dlq"),  # parked again since
    ],
)
def test_where_a_message_goes_back(tmp_path, receives, marks, where):
    state = fake_state(tmp_path)
    failed(state, "a", receives, "10:00:01")
    parked, purged = restore._parked(state, {"a"}, {k: epoch(v) for k, v in marks.items()})
    found = "dlq" if "a" in parked else "gone" if "a" in purged else "queue"
    assert found == where


def test_a_rewrite_keeps_the_marks_and_drops_what_it_is_told(tmp_path):
    run_dir = str(tmp_path)
    for key in ("a", "b"):
        journal.append(run_dir, {"queue": "q", "body": f'{{"order_id": "{key}"}}', "group": key})
    journal.mark(run_dir, "redriven")
    held = journal.read(run_dir)
    with journal.locked(run_dir, exclusive=True):
        journal.rewrite(run_dir, journal.Journal({"b": held.messages["b"]}, held.marks))
    again = journal.read(run_dir)
    assert list(again.messages) == ["b"] and again.marks == held.marks
