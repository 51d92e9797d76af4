"""`sandbox dlq list|show|redrive|purge` on the real queue, and redrive with and without
StartMessageMoveTask."""

from __future__ import annotations

import uuid

import pytest

from sandbox import stack
from sandbox.ops import dlq
from sandbox.ops.load import POISON_CUSTOMER_ID, Client, order
from sandbox.spec import alarms
from sandbox.standins import cloudwatch, localstack
from sandbox.standins.aurora import database
from tests.conftest import TEST_RUNNER, committed, wait_drained, wait_for
from tests.integration.test_cli import sandbox


def park(state, count: int) -> list[str]:
    """Send ``count`` poison orders and wait until all sit in the DLQ."""
    prefix = f"parked-{uuid.uuid4().hex[:6]}"
    client = Client(state)
    ids = [f"{prefix}-{i}" for i in range(count)]
    for order_id in ids:
        assert client.post(order(order_id, POISON_CUSTOMER_ID)).accepted
    client.close()
    wait_for(lambda: stack.queued(state)[1] >= count, f"{count} poison order(s) in the DLQ")
    assert stack.queued(state) == (0, count)
    return ids


def test_list_and_show_explain_why_a_message_is_parked(live):
    (order_id,) = park(live, 1)
    listed = sandbox(live, "dlq", "list")
    assert listed.returncode == 0 and order_id in listed.stdout
    (parked,) = dlq.peek(live)
    assert parked.order_id == order_id
    assert parked.receives == live.queue.max_receive_count
    assert "foreign key" in parked.last_error
    assert stack.queued(live) == (0, 1), "peeking leaves the message where it was"
    shown = sandbox(live, "dlq", "show", order_id)
    assert shown.returncode == 0 and f'"customer_id": {POISON_CUSTOMER_ID}' in shown.stdout
    missing = sandbox(live, "dlq", "show", "no-such-order")
    assert missing.returncode == 1
    assert missing.stderr == "error: no message 'no-such-order' in the DLQ\n"  # one plain line
    dlq.purge(live)


def test_purge_asks_first(live):
    park(live, 2)
    refused = sandbox(live, "dlq", "purge")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert stack.queued(live)[1] == 2
    purged = sandbox(live, "dlq", "purge", "--yes")
    assert purged.returncode == 0 and "purged 2" in purged.stdout
    wait_for(lambda: stack.queued(live)[1] == 0, "the DLQ empty after the purge")


def wait_alarm(state, expected: str) -> None:
    """Until LocalStack's CloudWatch puts the DLQ alarm in ``expected`` (bounded)."""
    client = localstack.client(state, "cloudwatch")
    seen: list[str | None] = [None]

    def reached() -> bool:
        seen[0] = cloudwatch.states(client, state).get(alarms.DLQ_NOT_EMPTY.name)
        return seen[0] == expected

    wait_for(reached, lambda: f"the DLQ alarm {expected} (it stayed {seen[0]})", interval=1)


def test_manual_redrive_after_the_fix_commits_every_parked_order(live):
    wait_alarm(live, "OK")  # the DLQ is empty: no alarm
    ids = park(live, 3)
    wait_alarm(live, "ALARM")  # as AWS would page the operator
    database.add_customer(live, POISON_CUSTOMER_ID, "fixed")
    try:
        result = sandbox(live, "dlq", "redrive")  # FIFO: auto means the manual path
        assert result.returncode == 0 and "redrove 3" in result.stdout and "manual" in result.stdout
        rows = wait_drained(live, ids[0].rsplit("-", 1)[0], 3)
        assert sorted(rows) == sorted(ids) and max(rows.values()) == 1
        assert stack.queued(live) == (0, 0)
        wait_alarm(live, "OK")
    finally:
        with database.connect(live, live.writer.name) as conn:
            conn.execute("DELETE FROM orders WHERE customer_id = %s", (POISON_CUSTOMER_ID,))
            conn.execute("DELETE FROM customers WHERE customer_id = %s", (POISON_CUSTOMER_ID,))


@pytest.fixture(scope="module")
def standard(tmp_path_factory):
    """A second stack with a standard queue, where StartMessageMoveTask is the redrive."""
    from sandbox.spec.queue import QueueSettings

    directory = tmp_path_factory.mktemp("standard")
    options = stack.Options(
        queue=QueueSettings(type="standard", max_receive_count=2, visibility_timeout_seconds=2),
        runner=TEST_RUNNER,
        auto_ports=True,
    )
    state, _ = stack.up(options, report=lambda step: None, directory=directory)
    yield state
    stack.down(force=True, report=lambda step: None, directory=directory)


def test_move_task_redrive_on_a_standard_queue(standard):
    ids = park(standard, 3)
    database.add_customer(standard, POISON_CUSTOMER_ID, "fixed")
    moved, method = dlq.redrive(standard, "move-task")
    assert (moved, method) == (3, "move-task")
    rows = wait_drained(standard, ids[0].rsplit("-", 1)[0], 3)
    assert sorted(rows) == sorted(ids)
    assert committed(standard, "parked-") == rows
