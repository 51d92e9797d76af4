"""The queued write path end to end, on the real stack: HTTP -> gateway -> producer -> SQS ->
runner -> consumer -> PgBouncer -> PostgreSQL. Every check counts rows; none samples."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox import stack
from sandbox.ops.load import Client, order, send_orders
from sandbox.standins import cognito
from sandbox.standins.aurora import database
from tests.conftest import committed, wait_drained


def test_3000_orders_commit_exactly_once_and_leave_the_queues_empty(live):
    prefix = f"steady-{uuid.uuid4().hex[:6]}"
    ledger = send_orders(live, 3000, rate=150, prefix=prefix)

    assert len(ledger) == 3000
    assert [s.status for s in ledger if not s.accepted] == []
    rows = wait_drained(live, prefix, 3000)
    assert len(rows) == 3000, f"{3000 - len(rows)} accepted orders missing"
    assert set(rows) == {s.order_id for s in ledger}
    assert max(rows.values()) == 1
    assert stack.queued(live) == (0, 0)


def test_the_committing_node_is_recorded(live):
    prefix = f"node-{uuid.uuid4().hex[:6]}"
    send_orders(live, 5, rate=50, prefix=prefix)
    wait_drained(live, prefix, 5)
    with database.connect(live, live.writer.name) as conn:
        nodes = conn.execute(
            "SELECT DISTINCT committed_node FROM orders WHERE order_id LIKE %s", (f"{prefix}%",)
        ).fetchall()
    assert nodes == [(live.writer.name,)]


def test_a_duplicate_order_id_is_accepted_and_committed_once(live):
    client = Client(live)
    body = order(f"dup-{uuid.uuid4().hex[:8]}")
    first, second = client.post(body), client.post(body)
    client.close()
    assert (first.status, second.status) == (202, 202)
    assert wait_drained(live, body["order_id"], 1) == {body["order_id"]: 1}


def test_sql_metacharacters_are_stored_verbatim(live):
    note = "Robert'); DROP TABLE orders;-- \\ %s %% $$ $1 \" ' ; \x7f ünï"
    client = Client(live)
    body = order(f"meta-{uuid.uuid4().hex[:8]}", note=note)
    assert client.post(body).status == 202
    client.close()
    wait_drained(live, body["order_id"], 1)
    with database.connect(live, live.writer.name) as conn:
        stored = conn.execute(
            "SELECT payload->>'note' FROM orders WHERE order_id = %s", (body["order_id"],)
        ).fetchone()
    assert stored == (note,)


@pytest.fixture
def api(live):
    token = cognito.issue_token(live)
    with httpx.Client(
        base_url=live.api_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


BAD = f"bad-{uuid.uuid4().hex[:6]}"


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        ('{"order_id": "x", ', 400, None),
        ("", 400, None),
        ("[]", 400, None),
        (json.dumps({"customer_id": 1, "amount": "1.00"}), 400, "order_id"),
        (
            json.dumps({"order_id": f"{BAD}-1", "customer_id": "one", "amount": 1}),
            400,
            "customer_id",
        ),
        (json.dumps({"order_id": f"{BAD}-2", "customer_id": 1, "amount": -5}), 400, "amount"),
        (json.dumps({"order_id": f"{BAD}-3", "customer_id": 1, "amount": [1]}), 400, "amount"),
        (
            json.dumps(
                {"order_id": f"{BAD}-4", "customer_id": 1, "amount": 1, "note": "n" * 300_000}
            ),
            413,
            None,
        ),
    ],
)
def test_bad_bodies_get_a_json_error(api, content, status, field):
    reply = api.post("/orders", content=content, headers={"Content-Type": "application/json"})
    assert reply.status_code == status
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["message"]
    if field:
        assert reply.json()["field"] == field


def test_refused_orders_never_reach_the_database(live, api):
    assert api.post("/orders", json=order(f"{BAD}-5", amount="-1")).status_code == 400
    # A valid order sent after the refused ones: once it has committed and the queue is empty,
    # anything the refused ones had put in the queue would have been consumed too.
    marker = order(f"marker-{uuid.uuid4().hex[:8]}")
    assert api.post("/orders", json=marker).status_code == 202
    wait_drained(live, marker["order_id"], 1)
    assert committed(live, BAD) == {}


def other_key_token(live):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "iss": live.issuer,
        "client_id": live.client_id,
        "token_use": "access",
        "exp": int(time.time()) + 60,
    }
    return jwt.encode(claims, key, "RS256", headers={"kid": cognito.KEY_ID})


@pytest.mark.parametrize(
    ("make_header", "why"),
    [
        (lambda live: None, "missing"),
        (lambda live: "Bearer", "missing"),
        (lambda live: "Bearer garbage", "invalid"),
        (lambda live: f"Bearer {cognito.issue_token(live, expires_in=-10)}", "expired"),
        (lambda live: f"Bearer {other_key_token(live)}", "invalid"),
    ],
)
def test_requests_without_a_valid_token_get_401(live, make_header, why):
    header = make_header(live)
    headers = {"Authorization": header} if header else {}
    reply = httpx.post(f"{live.api_url}/orders", json=order("auth-1"), headers=headers)
    assert reply.status_code == 401
    assert why in reply.json()["message"]


def test_the_gateway_publishes_its_jwks(live):
    keys = httpx.get(f"{live.issuer}/.well-known/jwks.json").json()["keys"]
    assert [k["kid"] for k in keys] == [cognito.KEY_ID]
    assert "d" not in keys[0]  # the public half only
