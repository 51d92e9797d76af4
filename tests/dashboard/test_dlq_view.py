"""The local page's DLQ view (`dashboard.dlq_view.show`) on fakes, without a stack: the listing
and detail it shares with the AWS page, and its own fresh read of the chosen message."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from dashboard import actions
from sandbox.ops import dlq
from tests.dashboard.test_aws_page import message


def page() -> None:
    """The DLQ view alone, with two messages in the DLQ as `sandbox status` would count them."""
    from dashboard import dlq_view
    from dashboard.snapshot import Snapshot

    status = {"queues": {"dlq": {"visible": 2, "in_flight": 0}}}
    snapshot = Snapshot(0.0, status, None, None, [], None)
    dlq_view.show(None, snapshot, busy=False)  # type: ignore[arg-type]


def test_the_local_view_lists_then_reads_the_chosen_message_afresh(monkeypatch):
    listed = [message("o-1", 25), message("o-2", 25)]
    read: list[str] = []

    def dlq_message(state: object, key: str):
        read.append(key)
        return next(p for p in listed if p.order_id == key)

    monkeypatch.setattr(dlq, "peek", lambda state: listed)
    monkeypatch.setattr(actions, "dlq_message", dlq_message)
    at = AppTest.from_function(page).run()
    assert not at.exception, at.exception
    table = next(f.value for f in at.dataframe if "order id" in f.value.columns)
    assert list(table["order id"]) == ["o-1", "o-2"]
    assert list(table["receives before parked"]) == [25, 25]
    assert "fix" not in table.columns, "no customer named in the consumer's log: no fix to show"
    at.selectbox(key="dlq_choice").set_value("o-2").run()
    assert json.loads(at.json[0].value)["order_id"] == "o-2"
    assert read == ["o-1", "o-2"]


def test_a_failed_peek_is_one_line(monkeypatch):
    def peek(state: object):
        raise RuntimeError("LocalStack is not answering")

    monkeypatch.setattr(dlq, "peek", peek)
    at = AppTest.from_function(page).run()
    assert not at.exception, at.exception
    assert [c.value for c in at.caption] == [
        "The DLQ cannot be listed right now: LocalStack is not answering"
    ]


def page_with_the_queue_busy() -> None:
    """The DLQ view with one message parked and one in the queue, on a stack of 25 receives."""
    from types import SimpleNamespace

    from dashboard import dlq_view
    from dashboard.snapshot import Snapshot

    queues = {"dlq": {"visible": 1, "in_flight": 0}, "queue": {"visible": 0, "in_flight": 1}}
    snapshot = Snapshot(0.0, {"queues": queues}, None, None, [], None)
    state = SimpleNamespace(queue=SimpleNamespace(max_receive_count=25))
    dlq_view.show(state, snapshot, busy=False)  # type: ignore[arg-type]


def test_the_fix_for_each_order_and_the_orders_still_climbing_are_shown(monkeypatch):
    parked = message("o-1", 25)
    parked.missing_customer, parked.last_failed = 912345678, 1_700_000_100.0
    climbing = dlq.Failing("o-2", 7, 1_700_000_200.0, "insert or update ...", 923456789)
    monkeypatch.setattr(dlq, "peek", lambda state: [parked])
    monkeypatch.setattr(dlq, "mark_fixed", lambda state, listed: listed)  # no writer to ask
    monkeypatch.setattr(dlq, "failing", lambda state, listed: [climbing])
    monkeypatch.setattr(actions, "dlq_message", lambda state, key: parked)
    at = AppTest.from_function(page_with_the_queue_busy).run()
    assert not at.exception, at.exception
    table, queued = (f.value for f in at.dataframe)
    assert list(table["fix"]) == [dlq.fix_command(912345678)]
    assert list(queued["order id"]) == ["o-2"] and list(queued["receives so far"]) == ["7 of 25"]
    assert list(queued["fix"]) == [dlq.fix_command(923456789)]
    assert any(c.value.startswith("Failing in the queue, not parked yet") for c in at.caption)
