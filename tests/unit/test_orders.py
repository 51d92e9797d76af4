"""The order contract the API enforces (pure validation, no stack)."""

import json

import pytest

from sandbox.functions.orders import InvalidOrder, QueuedOrder, accepted, parse_order

GOOD = {"order_id": "o-1", "customer_id": 7, "amount": 12.5}


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
