"""The DLQ as `sandbox dlq list` and `show` read it, without a stack: which message a copied
prefix names, which orders are still failing in the queue (from the consumer's log), what a
parked message says of itself, and the listing at 80 columns with nothing cut."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from rich.console import Console

from sandbox.cli import dlq as dlq_cli
from sandbox.ops import dlq
from sandbox.ops.load import POISON_CUSTOMERS, poison_customer
from sandbox.platform import hints
from sandbox.platform.hints import command as hint
from sandbox.spec.queue import QueueSettings

ERROR = (
    'insert or update on table "orders" violates foreign key constraint '
    '"orders_customer_id_fkey"\nDETAIL:  Key (customer_id)=(912345678) is not present in table '
    '"customers".'
)


def parked(order_id: str, message_id: str, accepted: float = 1_700_000_000.0) -> dlq.Parked:
    at = datetime.fromtimestamp(accepted, tz=UTC).isoformat()
    raw = {
        "MessageId": message_id,
        "Body": json.dumps({"order_id": order_id, "customer_id": 912345678, "accepted_at": at}),
        "Attributes": {"ApproximateReceiveCount": "28", "SentTimestamp": "1700000099000"},
    }
    failure = {"error": ERROR, "receive_count": 25, "timestamp": "2023-11-14 22:15:00,000+0000"}
    return dlq._parked(raw, {order_id: failure})


def test_a_parked_message_says_when_it_was_sent_why_it_failed_and_its_fix():
    message = parked("o-1", "m-1")
    assert message.sent == 1_700_000_000.0, "the API's acceptance, not SQS's move to the DLQ"
    assert message.receives == 25 and message.receives_in_dlq == 3  # 28 counted by SQS
    assert message.last_error == ERROR.splitlines()[0]
    assert message.missing_customer == 912345678
    assert dlq.fix_command(912345678).endswith("sandbox customer add 912345678")


def test_a_message_is_found_by_either_id_or_a_unique_prefix_of_one():
    listing = [parked("order-6dea87b0c1d2", "4a1b-1"), parked("order-6dfe01234567", "4a1b-2")]
    assert dlq.find(listing, "order-6dea87b0c1d2") is listing[0]
    assert dlq.find(listing, "order-6dea") is listing[0]
    assert dlq.find(listing, "4a1b-2") is listing[1]
    with pytest.raises(LookupError, match=r"'order-6d' matches 2 messages in the DLQ \(order-"):
        dlq.find(listing, "order-6d")
    with pytest.raises(LookupError, match=r"no message 'nope' in the DLQ \(2 there: "):
        dlq.find(listing, "nope")


def test_one_order_parked_twice_is_told_apart_by_its_message_ids():
    twice = [parked("o-1", "m-1"), parked("o-1", "m-2")]
    with pytest.raises(LookupError, match=r"'o-1' matches 2 messages in the DLQ \(m-1, m-2\)"):
        dlq.find(twice, "o-1")
    assert dlq.find(twice, "m-2") is twice[1]


def test_the_orders_failing_in_the_queue_are_those_whose_last_word_is_a_recent_failure(tmp_path):
    now = time.time()

    def line(message: str, order_id: str, ago: float, **extra: object) -> str:
        at = datetime.fromtimestamp(now - ago, tz=UTC).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
        entry = {"message": message, "order_id": order_id, "timestamp": f"{at}+0000"}
        return json.dumps(entry | extra)

    failed = "order failed"
    log = [
        line(failed, "climbing", 9, error=ERROR, receive_count=2),
        line(failed, "climbing", 3, error=ERROR, receive_count=3),
        line(failed, "committed-later", 5, error="writer down", receive_count=1),
        line("order committed", "committed-later", 4),
        line(failed, "parked", 2, error=ERROR, receive_count=25),
        line(failed, "gone-long-ago", 3600, error=ERROR, receive_count=4),
        '{"message": "order failed", "order_id": "cut short',  # a line killed mid-write
    ]
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "consumer.log").write_text("\n".join(log) + "\n")
    state = SimpleNamespace(queue=QueueSettings(), path=lambda *parts: tmp_path.joinpath(*parts))
    (climbing,) = dlq.failing(state, [parked("parked", "m-1")], now=now)  # type: ignore[arg-type]
    assert (climbing.order_id, climbing.receives) == ("climbing", 3)
    assert climbing.missing_customer == 912345678
    assert climbing.last_error == ERROR.splitlines()[0]


def test_each_poison_order_names_a_new_customer_from_the_reserved_range():
    drawn = [poison_customer() for _ in range(50)]
    assert all(customer in POISON_CUSTOMERS for customer in drawn)
    assert POISON_CUSTOMERS.start > 1000, "the database is seeded with customers 1-1000"
    assert len(set(drawn)) == 50


def test_the_listing_at_80_columns_cuts_no_id_and_no_error(monkeypatch, capsys):
    long_id = "o" * 60 + "-end"  # an order id may be 64 characters long
    listing = [parked(long_id, "5f0e7c1a-8d7b-4c2e-9a51-0b0c1d2e3f40")]
    climbing = dlq.Failing("order-climbing", 7, time.time(), ERROR.splitlines()[0], 923456789)
    state = SimpleNamespace(queue=QueueSettings())
    monkeypatch.setattr(dlq_cli, "load", lambda: state)
    monkeypatch.setattr(dlq_cli, "console", Console(width=80))
    # A long spelling of the command (its path, from a folder above the project): still whole.
    monkeypatch.setattr(hints, "_spelled", lambda: "/home/host/workshop/.venv/bin/sandbox")
    monkeypatch.setattr(dlq, "peek", lambda state: listing)
    monkeypatch.setattr(dlq, "mark_fixed", lambda state, parked: parked)  # no writer to ask
    monkeypatch.setattr(dlq, "failing", lambda state, listed: [climbing])
    dlq_cli.dlq_list()
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0] == "DLQ: 1 message(s)" and max(len(line) for line in lines) <= 80
    assert all(line.count("`") % 2 == 0 for line in lines), "a `command` across two lines"
    assert long_id in lines and "  message id  5f0e7c1a-8d7b-4c2e-9a51-0b0c1d2e3f40" in lines
    text = " ".join(printed.split())
    assert f"last error {ERROR.splitlines()[0]} fix" in text
    assert "receives 25 before SQS parked it (maxReceiveCount 25)" in text
    assert f"fix `{dlq.fix_command(912345678)}`, then `{hint('dlq redrive')}`" in text
    assert (
        "Failing in the queue, not parked yet: 1 order(s) order-climbing receives 7 of 25" in text
    )
    assert f"fix `{dlq.fix_command(923456789)}` (it then commits at its next receive)" in text


def test_a_parked_order_whose_customer_was_added_since_needs_only_the_redrive(monkeypatch, capsys):
    fixed = parked("o-1", "m-1")
    fixed.fixed = True
    monkeypatch.setattr(dlq_cli, "load", lambda: SimpleNamespace(queue=QueueSettings()))
    monkeypatch.setattr(dlq, "peek", lambda state: [fixed])
    monkeypatch.setattr(dlq, "mark_fixed", lambda state, parked: parked)
    monkeypatch.setattr(dlq, "failing", lambda state, listed: [])
    dlq_cli.dlq_list()
    assert f"  fix         customer 912345678 added since: `{hint('dlq redrive')}`" in (
        capsys.readouterr().out.splitlines()
    )
