"""`sandbox dlq list|show|redrive|purge` on the real queue, and redrive with and without
StartMessageMoveTask; the workshop's DLQ step (a poison order parked, fixed, redriven and
committed) done three times on one stack; the DLQ read at 80 columns."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid

import pytest

from sandbox import stack
from sandbox.ops import dlq
from sandbox.ops.load import POISON_CUSTOMERS, Client, order, poison_customer
from sandbox.platform.hints import command as hint
from sandbox.spec import alarms
from sandbox.standins import cloudwatch, localstack
from sandbox.standins.aurora import database
from tests.conftest import TEST_RUNNER, committed, typed, wait_drained, wait_for
from tests.integration.test_cli import SANDBOX, sandbox


def park(state, count: int) -> dict[str, int]:
    """Send ``count`` poison orders, each for a new customer, and wait until all sit in the DLQ;
    returns each order id with its customer."""
    prefix = f"parked-{uuid.uuid4().hex[:6]}"
    client = Client(state)
    orders = {f"{prefix}-{i}": poison_customer() for i in range(count)}
    for order_id, customer in orders.items():
        assert client.post(order(order_id, customer)).accepted
    client.close()
    wait_for(lambda: stack.queued(state)[1] >= count, f"{count} poison order(s) in the DLQ")
    assert stack.queued(state) == (0, count)
    return orders


def at_80(live, command: str) -> subprocess.CompletedProcess[str]:
    """A command line as a user types it, on an 80-column terminal."""
    env = os.environ | {"SANDBOX_RUN_DIR": live.run_dir, "COLUMNS": "80"}
    line = (
        command.replace("sandbox ", f"{SANDBOX} ", 1) if command.startswith("sandbox ") else command
    )
    return typed(line, env)


def words(text: str) -> str:
    """Text with its line breaks and indents as single spaces: a wrapped field read whole."""
    return " ".join(text.split())


def test_list_and_show_explain_why_a_message_is_parked_at_80_columns(live):
    before = time.time()
    ((order_id, customer),) = park(live, 1).items()
    (parked,) = dlq.peek(live)
    assert (parked.order_id, parked.missing_customer) == (order_id, customer)
    assert parked.receives == live.queue.max_receive_count
    assert "foreign key" in parked.last_error
    # "sent" is when the API queued it, not when SQS parked it (after every receive failed)
    assert parked.last_failed is not None and before - 0.01 <= parked.sent < parked.last_failed
    assert stack.queued(live) == (0, 1), "peeking leaves the message where it was"

    listed = at_80(live, "sandbox dlq list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "DLQ: 1 message(s)" and max(len(line) for line in lines) <= 80
    assert order_id in lines and f"  message id  {parked.message_id}" in lines  # whole ids
    limit = live.queue.max_receive_count
    text = words(listed.stdout)
    assert f"receives {limit} before SQS parked it (maxReceiveCount {limit})" in text
    assert f"last error {parked.last_error} " in text  # wrapped between words, never cut
    assert f"fix `{dlq.fix_command(customer)}`, then `{hint('dlq redrive')}`" in text

    for prefix in (order_id[:-2], parked.message_id[:8]):  # a prefix copied from anywhere
        shown = at_80(live, f"sandbox dlq show {prefix}")
        assert shown.returncode == 0, shown.stderr
        assert f'"customer_id": {customer}' in shown.stdout
    again = dlq.show(live, order_id)
    looks = again.receives_in_dlq
    assert again.receives == limit and looks is not None and looks >= 3  # list and two shows
    assert int(again.attributes["ApproximateReceiveCount"]) == limit + looks
    text = words(at_80(live, f"sandbox dlq show {order_id}").stdout)
    assert f"in the DLQ received {looks + 1} time(s) since" in text  # this show's look, too
    missing = sandbox(live, "dlq", "show", "no-such-order")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no message 'no-such-order' in the DLQ (1 there: ")
    assert len(missing.stderr.splitlines()) == 1  # one plain line
    dlq.purge(live)


def test_an_order_failing_in_the_queue_shows_its_receive_count_climb(live):
    """Before SQS parks it, the poison order's receive count climbs where the room can see it
    (`dlq list`'s second part, read from the consumer's log)."""
    order_id = f"climb-{uuid.uuid4().hex[:6]}"
    client = Client(live)
    assert client.post(order(order_id, poison_customer())).accepted
    client.close()
    seen: list[int] = []

    def climbed() -> bool:
        mine = [f.receives for f in dlq.failing(live, []) if f.order_id == order_id]
        if mine and (not seen or mine[0] != seen[-1]):
            seen.append(mine[0])
        return len(seen) >= 2

    wait_for(climbed, lambda: f"{order_id}'s receive count climbing (seen {seen})", interval=0.1)
    assert seen == sorted(seen) and seen[0] >= 1 and seen[-1] <= live.queue.max_receive_count
    wait_for(lambda: stack.queued(live)[1] == 1, f"{order_id} parked")
    assert [f for f in dlq.failing(live, dlq.peek(live)) if f.order_id == order_id] == []
    dlq.purge(live)


def test_the_dlq_step_three_times_in_a_row_on_one_stack(live):
    """The workshop's DLQ step, as a host rehearsing it would do it three times: each `send
    --poison` parks an order of its own, the fix it prints (run as printed) adds its customer,
    and the redrive commits it; the next poison order is parked again all the same."""
    customers = []
    for round_ in range(1, 4):
        sent = at_80(live, "sandbox send --poison")
        assert sent.returncode == 0, sent.stderr
        order_id = json.loads(sent.stdout.splitlines()[0].split(" ", 1)[1])["order_id"]
        printed = re.search(r"^fix: `(\S*sandbox customer add (\d+))`", sent.stdout, re.M)
        assert printed, sent.stdout
        fix, customer = printed.group(1), int(printed.group(2))
        assert customer in POISON_CUSTOMERS and customer not in customers
        customers.append(customer)
        wait_for(lambda: stack.queued(live)[1] == 1, f"round {round_}: {order_id} parked")
        listed = at_80(live, "sandbox dlq list").stdout
        assert listed.splitlines()[0] == "DLQ: 1 message(s)"
        assert order_id in listed.splitlines() and f"fix `{fix}`, then" in words(listed)
        assert committed(live, order_id) == {}, "parked, not committed"
        added = at_80(live, fix)
        assert (
            added.returncode == 0 and added.stdout.splitlines()[0] == f"customer {customer} added"
        )
        listed = words(at_80(live, "sandbox dlq list").stdout)
        assert f"fix customer {customer} added since: `{hint('dlq redrive')}`" in listed
        again = at_80(live, fix)  # the fix applied twice: says so, and the script goes on
        assert again.returncode == 0 and f"customer {customer} exists already" in again.stdout
        redrove = at_80(live, "sandbox dlq redrive")
        assert redrove.returncode == 0 and "redrove 1 message(s)" in redrove.stdout
        assert wait_drained(live, order_id, 1) == {order_id: 1}
        assert stack.queued(live) == (0, 0)
    assert len(set(customers)) == 3


def test_purge_asks_first(live):
    prefix = next(iter(park(live, 2))).rsplit("-", 1)[0]
    ambiguous = sandbox(live, "dlq", "show", prefix)  # both parked orders start with it
    assert ambiguous.returncode == 1
    assert f"'{prefix}' matches 2 messages in the DLQ" in ambiguous.stderr
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
    orders = park(live, 3)
    wait_alarm(live, "ALARM")  # as AWS would page the operator
    # The dashboard's fix, from the CLI: the customers the parked orders wait for, each named.
    fixed = sandbox(live, "customer", "add", "--parked")
    assert fixed.returncode == 0
    for order_id, customer in orders.items():
        assert f"customer {customer} added ({order_id} wait(s) for it)" in fixed.stdout.splitlines()
    result = sandbox(live, "dlq", "redrive")  # FIFO: auto means the manual path
    assert result.returncode == 0 and "redrove 3" in result.stdout and "manual" in result.stdout
    rows = wait_drained(live, next(iter(orders)).rsplit("-", 1)[0], 3)
    assert sorted(rows) == sorted(orders) and max(rows.values()) == 1
    assert stack.queued(live) == (0, 0)

    # The consumer logs "order committed" just after its commit: the rows can be seen first;
    # and a purged order's failures count as failing for a few visibility timeouts.
    wait_for(lambda: not dlq.failing(live, []), lambda: f"the log settling {dlq.failing(live, [])}")
    fixed = dlq.fix_parked(live)
    assert fixed == [], f"nothing parked: nothing to fix; the log on them: {logged(live, fixed)}"
    wait_alarm(live, "OK")


def logged(live, fixed: list[dlq.Fixed]) -> list[str]:
    """The consumer's log lines on the orders of ``fixed``: what made them look unsettled."""
    orders = {order for f in fixed for order in f.order_ids}
    lines = live.path("logs", "consumer.log").read_text().splitlines()
    return [line for line in lines if any(order in line for order in orders)]


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
    orders = park(standard, 3)
    for customer in orders.values():
        assert database.add_customer(standard, customer, "fixed")
    moved, method = dlq.redrive(standard, "move-task")
    assert (moved, method) == (3, "move-task")
    rows = wait_drained(standard, next(iter(orders)).rsplit("-", 1)[0], 3)
    assert sorted(rows) == sorted(orders)
    assert committed(standard, "parked-") == rows
