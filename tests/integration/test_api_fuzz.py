"""The API fuzzed from its own OpenAPI document (schemathesis) on the real stack.

Every generated request, valid and invalid, must get an answer the document allows (status,
content type, body schema, headers) and never a 5xx. The stateful property on top: every order
answered 202 ends committed exactly once, directly or (for an unknown customer, the deliberate
poison) after the DLQ and a redrive once the customer exists; every 201 is committed once.
Bounded: a fixed number of cases per operation, and generous waits on conditions.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from sandbox import stack
from sandbox.functions.orders import InvalidOrder, parse_order
from sandbox.ops import dlq
from sandbox.ops.load import POISON_CUSTOMERS
from sandbox.platform.state import StackState
from sandbox.standins import cognito
from sandbox.standins.api_gateway import openapi
from sandbox.standins.aurora import database

CASES = 1000  # per operation, valid and invalid together
RUN = uuid.uuid4().hex[:6]
#: Each valid order's id is made unique (a prefix plus its generated id), so every 202 stands for
#: one order; reusing an id is tested apart (tests/integration/test_api_http.py).
numbers = itertools.count()
ledger: dict[str, list[str]] = {"queued": [], "committed": [], "refused": []}
calls: Counter[str] = Counter()  # requests sent, per operation
UNKNOWN = 10**15  # one valid order in ten goes to a customer from here up: the poison


#: The document in the repository, which the gateway serves (checked below) and routes by.
schema = schemathesis.openapi.from_dict(openapi.document())
# A valid order may still be refused for what it says, not its shape: the direct path's 422 for
# an unknown customer (the poison, sent on purpose), as 409 for an id already used.
accepting = schema.config.checks.positive_data_acceptance
accepting.expected_statuses = [*accepting.expected_statuses, "422"]


def test_the_gateway_serves_the_document(live):
    assert httpx.get(f"{live.api_url}/openapi.json", timeout=30).json() == openapi.document()


def prepare(live: StackState, body: object) -> object:
    """A valid order gets a unique id, and its customer exists but for one order in ten."""
    try:
        order = parse_order(json.dumps(body))
    except (InvalidOrder, TypeError, ValueError):
        return body  # sent as generated: the API must refuse it
    number = next(numbers)
    changes = {"order_id": f"fz{RUN}-{number}-{order.order_id}"[:64]}
    # Hypothesis draws integers from the constants in our own code too, the poison customers'
    # bounds among them: one added would turn a later poison order that drew it into a commit.
    if number % 10 and order.customer_id not in POISON_CUSTOMERS:
        database.add_customer(live, order.customer_id, "fuzz")
    else:
        changes["customer_id"] = UNKNOWN + number
    return body | changes  # type: ignore[operator]


@schema.parametrize()
@settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_document(case, live):
    if isinstance(case.body, dict):
        case.body = prepare(live, case.body)
    token = cognito.issue_token(live)
    calls[case.operation.label] += 1
    response = case.call_and_validate(
        base_url=live.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    if response.status_code in (201, 202):
        ledger["queued" if response.status_code == 202 else "committed"].append(
            case.body["order_id"]
        )
    elif response.status_code == 422:  # the direct path: an unknown customer, said at once
        ledger["refused"].append(case.body["order_id"])


@schema.include(method="POST").parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_without_a_valid_token_every_order_is_refused(case, live):
    if case.method != "POST":  # schemathesis also tries other methods: 405 comes before auth
        return
    for authorization in (None, "Bearer not-a-token", "Basic dXNlcjpwdw=="):
        headers = {"Authorization": authorization} if authorization else {}
        response = case.call(base_url=live.api_url, headers=headers, timeout=30)
        assert response.status_code == 401, (authorization, response.text)
        assert response.headers["www-authenticate"] == ["Bearer"]
        case.validate_response(response)


def test_every_acknowledged_order_commits_exactly_once(live):
    """Runs after the fuzzing: every 202 and 201 is in the table (once: the order id is its
    primary key), the poison orders after the DLQ and a redrive once their customers were
    added (the workshop's fix); no 422 is."""
    if not calls:
        pytest.skip("checks what the fuzz tests above acknowledged: run the whole module")
    for operation in ("POST /orders", "POST /direct/orders"):
        assert calls[operation] >= CASES, f"only {calls[operation]} cases for {operation}"
    acknowledged = ledger["queued"] + ledger["committed"]
    assert len(ledger["queued"]) >= CASES // 4, f"too few valid orders generated: {calls}"
    print(f"fuzz: {dict(calls)}; 202 {len(ledger['queued'])}, 201 {len(ledger['committed'])}")

    wait_until(lambda: unsettled(live, ledger["queued"]), "neither committed nor in the DLQ")
    ours = [m for m in dlq.peek(live) if m.order_id.startswith(f"fz{RUN}-")]
    poison = {int(json.loads(message.body)["customer_id"]) for message in ours}
    assert poison, "no poison order reached the DLQ"
    assert min(poison) >= UNKNOWN, "an order for a known customer was parked"
    for customer_id in poison:
        database.add_customer(live, customer_id, "the fix")
    dlq.redrive(live)
    wait_until(lambda: not_committed(live, acknowledged), "not committed after the redrive")
    assert set(committed_rows(live, acknowledged)) == set(acknowledged)
    assert not committed_rows(live, ledger["refused"]), "a refused (422) order was committed"
    assert stack.queued(live) == (0, 0)


def committed_rows(live: StackState, order_ids: list[str]) -> Counter[str]:
    with database.connect(live, live.writer.name) as conn:
        rows = conn.execute(
            "SELECT order_id FROM orders WHERE order_id = ANY(%s)", (order_ids,)
        ).fetchall()
    return Counter(row[0] for row in rows)


def unsettled(live: StackState, order_ids: list[str]) -> set[str]:
    """The queued orders neither committed nor in the DLQ (all of them while the queue is busy)."""
    if stack.queued(live)[0]:
        return set(order_ids)
    parked = {message.order_id for message in dlq.peek(live)}
    return set(order_ids) - parked - set(committed_rows(live, order_ids))


def not_committed(live: StackState, order_ids: list[str]) -> set[str]:
    return set(order_ids) - set(committed_rows(live, order_ids))


def wait_until(pending, what: str, timeout: float = 600) -> None:
    """Until ``pending()`` is empty; else fail naming what still was, after a generous bound."""
    deadline = time.monotonic() + timeout
    while left := pending():
        assert time.monotonic() < deadline, f"{what} after {timeout:.0f} s: {sorted(left)[:20]}"
        time.sleep(0.5)
