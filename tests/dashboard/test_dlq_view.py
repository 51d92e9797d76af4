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
    assert list(table["order id"]) == ["o-1", "o-2"] and list(table["receives"]) == [25, 25]
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
