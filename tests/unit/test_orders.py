"""The order contract the API enforces (pure validation, no stack)."""

import json

import pytest

from sandbox.functions.orders import (
    MAX_MESSAGE_BYTES,
    InvalidOrder,
    QueuedOrder,
    accepted,
    parse_order,
)

GOOD = {"order_id": "o-1", "customer_id": 7, "amount": "12.50"}


def body(**changes):
    return json.dumps({**GOOD, **changes})


def test_a_good_order_round_trips_through_the_queue_format():
    order = accepted(parse_order(body(note="x'); DROP TABLE orders;--")), 1_700_000_000_000)
    back = QueuedOrder.model_validate_json(order.model_dump_json(), strict=False)
    assert back == order
    assert back.note == "x'); DROP TABLE orders;--"
    assert back.accepted_at.timestamp() == 1_700_000_000


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (body(amount=-1), "amount"),
        (body(amount="ten"), "amount"),
        (body(amount=1.234), "amount"),
        (body(amount=12.5), "amount"),  # a binary fraction: cents must be a string
        (body(amount="1e2"), "amount"),
        (body(amount="-1"), "amount"),
        (body(amount=" 1"), "amount"),
        (body(amount="12345678901"), "amount"),
        (body(amount=10_000_000_000), "amount"),
        (body(amount=True), "amount"),
        (body(amount=None), "amount"),
        (body(customer_id=2**63), "customer_id"),  # past bigint
        (body(customer_id=99999999999999999999999), "customer_id"),
        (body(note="a\u0000b"), "note"),  # PostgreSQL's text and jsonb cannot hold U+0000
        (body(note="\uffff"), "note"),  # SQS cannot carry U+FFFE / U+FFFF
        (body(note="\ufffe"), "note"),
        (body(note="n" * 40_001), "note"),  # could outgrow an SQS message once escaped
        (body(customer_id="7"), "customer_id"),
        (body(customer_id=True), "customer_id"),
        (body(customer_id=0), "customer_id"),
        (body(order_id=""), "order_id"),
        (body(order_id="has space"), "order_id"),
        (body(order_id=5), "order_id"),
        (body(currency="usd"), "currency"),
        (body(unexpected=1), "unexpected"),
        (json.dumps({"customer_id": 1, "amount": 1}), "order_id"),
        ("{not json", None),
        ("[1, 2]", None),
        ("", None),
    ],
)
def test_bad_orders_are_refused_naming_the_field(raw, field):
    with pytest.raises(InvalidOrder) as refused:
        parse_order(raw)
    assert refused.value.field == field
    assert refused.value.reason


def test_the_largest_order_fits_one_sqs_message():
    """Every character at its costliest once escaped as JSON (6 bytes), every field at its limit."""
    worst = body(
        order_id="o" * 64, customer_id=2**63 - 1, amount="9999999999.99", note="\x01" * 40_000
    )
    message = accepted(parse_order(worst), 1_700_000_000_000).model_dump_json()
    assert len(message.encode()) <= MAX_MESSAGE_BYTES


@pytest.mark.parametrize("amount", [7, "7", "7.0", "7.00"])
def test_one_amount_has_one_form(amount):
    """A retry that writes the amount differently is the same order (the same fingerprint)."""
    order = parse_order(body(amount=amount))
    assert str(order.amount) == "7.00"
    assert order.fingerprint() == parse_order(body(amount="7.00")).fingerprint()


def test_a_different_order_under_the_same_id_has_another_fingerprint():
    assert parse_order(body(customer_id=8)).fingerprint() != parse_order(body()).fingerprint()


def test_a_queued_order_has_the_fingerprint_of_the_order_it_carries():
    order = parse_order(body())
    assert accepted(order, 1_700_000_000_000).fingerprint() == order.fingerprint()


@pytest.mark.parametrize(
    ("stored", "same"),
    [
        ({**GOOD, "currency": "USD", "note": ""}, True),
        ({**GOOD, "amount": "12.5"}, True),  # as an older model stored it, and defaults left out
        ({**GOOD, "amount": "1.25E+1", "accepted_at": "2026-01-01T00:00:00Z"}, True),
        ({**GOOD, "amount": "12.51"}, False),
        ({**GOOD, "customer_id": 8}, False),
        ({**GOOD, "note": "other"}, False),
        ({**GOOD, "amount": "not a number"}, False),
    ],
)
def test_a_stored_payload_is_the_same_order_by_value(stored, same):
    assert parse_order(body()).same_as(stored) is same
