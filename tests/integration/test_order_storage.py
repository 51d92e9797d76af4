"""Every order the API accepts can be stored: the order model checked against the live schema's
column types and against what SQS carries, so the two sides cannot drift apart again.

The one acknowledged order that may not commit is the deliberate one (an unknown customer, the
poison message): the checks insert into a copy of ``orders`` without its foreign key.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from sandbox.functions.database import INSERT, INSERT_ALL, batch_params
from sandbox.functions.orders import NOTE_MAX_CHARS, InvalidOrder, Order, accepted, parse_order
from sandbox.standins import localstack
from sandbox.standins.api_gateway import openapi
from sandbox.standins.aurora import database

#: Where each field of an order is stored: its own column, or inside the ``payload`` jsonb.
STORED_IN = {
    "order_id": "order_id",
    "customer_id": "customer_id",
    "amount": "payload",
    "currency": "payload",
    "note": "payload",
}
#: The range of PostgreSQL's integer types.
INTEGER_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
GOOD = {"order_id": "o-1", "customer_id": 7, "amount": "12.50"}


@pytest.fixture(scope="module")
def columns(live) -> dict[str, dict]:
    with database.connect(live, live.writer.name) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
            "numeric_scale FROM information_schema.columns WHERE table_name = 'orders'"
        ).fetchall()
    names = ("data_type", "max_length", "precision", "scale")
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def test_every_field_of_an_order_has_a_place_in_the_table(columns):
    assert set(STORED_IN) == set(Order.model_fields), "a new order field needs a STORED_IN entry"
    assert set(STORED_IN.values()) <= set(columns)


@pytest.mark.parametrize("field", sorted(STORED_IN))
def test_each_field_fits_its_column(columns, field):
    column = columns[STORED_IN[field]]
    schema = Order.model_json_schema()["properties"][field]
    if column["data_type"] in INTEGER_RANGES:
        low, high = INTEGER_RANGES[column["data_type"]]
        assert schema["type"] == "integer"
        assert schema.get("minimum", schema.get("exclusiveMinimum", low - 1) + 1) >= low
        assert "maximum" in schema, f"{field}: an unbounded integer can overflow {column}"
        assert schema["maximum"] <= high
    else:  # text and jsonb: no U+0000 (neither can hold it), no longer than a varchar allows
        assert column["data_type"] in ("text", "jsonb", "character varying"), column
        if column["max_length"]:
            assert schema["maxLength"] <= column["max_length"]
        if schema.get("type") == "string":
            with pytest.raises(InvalidOrder):
                parse_order(json.dumps(GOOD | {field: "a\x00"}))


@pytest.fixture(scope="module")
def store(live):
    """A copy of ``orders`` with its types, defaults and checks but no foreign key, and a queue
    of its own: what the consumer's insert and the producer's send would make of an order."""
    conn = database.connect(live, live.writer.name)
    conn.execute("CREATE TEMP TABLE orders (LIKE public.orders INCLUDING ALL)")
    sqs = localstack.client(live, "sqs")
    name = f"storage-check-{uuid.uuid4().hex[:6]}.fifo"  # FIFO, as the stack's own queue
    queue = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    yield conn, sqs, queue
    sqs.delete_queue(QueueUrl=queue)
    conn.close()


def wide_orders() -> st.SearchStrategy[dict]:
    """Orders from the document's own schema, and the same with one field set to a JSON value
    well past it: a huge integer, a fraction, the characters the database or SQS refuse."""
    operation = schemathesis.openapi.from_dict(openapi.document())["/orders"]["POST"]
    valid = operation.as_strategy().map(lambda case: case.body)
    edges = st.sampled_from("\x00\x01\x1f\x7f\ud7ff\ue000\ufffd\ufffe\uffff\U0010ffff")
    text = st.lists(edges | st.characters(), max_size=50).map("".join)
    wild = {
        "order_id": text,
        "customer_id": st.integers() | st.integers(2**63 - 10, 2**64),
        "amount": st.integers(-10, 10**12)
        | st.decimals(allow_nan=True, places=3).map(str)
        | st.floats()
        | text,
        "currency": text,
        "note": text,
    }
    one_off = st.tuples(valid, st.sampled_from(sorted(wild))).flatmap(
        lambda pair: wild[pair[1]].map(lambda value: pair[0] | {pair[1]: value})
    )
    return valid | one_off


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(candidate=wide_orders())
def test_every_order_the_api_accepts_can_be_queued_and_stored(store, candidate):
    try:
        order = parse_order(json.dumps(candidate))
    except InvalidOrder:
        return  # refused with a 400: nothing acknowledged
    try:
        queue_and_store(store, order)
    except psycopg.Error as error:
        pytest.fail(f"accepted at the API but the insert fails: {error}\n{candidate!r}")


def queue_and_store(store, order: Order) -> dict:
    """What the producer sends (its group and dedup ids) and the consumer's very inserts, one
    order's and a batch's (the temporary table comes first on the search path); returns the
    row's payload (the whole row the same from both)."""
    conn, sqs, queue = store
    queued = accepted(order, 1_700_000_000_000)
    sqs.send_message(  # SQS carries it: its character set, its size limit
        QueueUrl=queue,
        MessageBody=queued.model_dump_json(),
        MessageGroupId=order.order_id,
        MessageDeduplicationId=order.fingerprint(),
    )
    params = queued.model_dump() | {"payload": Jsonb(queued.model_dump(mode="json"))}
    stored = "SELECT order_id, customer_id, accepted_at, payload FROM orders"
    with conn.transaction(force_rollback=True):
        conn.execute(INSERT, params)
        alone = conn.execute(stored).fetchone()
    with conn.transaction(force_rollback=True):
        conn.execute(INSERT_ALL, batch_params([queued]))
        batched = conn.execute(stored).fetchone()
    assert batched == alone
    return alone[-1]


def test_the_largest_order_the_model_allows_is_queued_and_stored(store):
    """The edges, explicitly: the longest id, the largest customer id and amount, and the longest
    note of the costliest characters (6 bytes each once JSON escapes them)."""
    note = "\x01" * (NOTE_MAX_CHARS - 2) + "\u00e9\U0010ffff"
    edge = {"order_id": "o" * 64, "customer_id": 2**63 - 1, "amount": "9999999999.99", "note": note}
    payload = queue_and_store(store, parse_order(json.dumps(edge)))
    assert Decimal(payload["amount"]) == Decimal("9999999999.99")
    assert payload["note"] == note
