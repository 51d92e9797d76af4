"""The Aurora control plane stand-in, on the real stack: faults nobody announces, under traffic.

Each fault is a signal to a process and nothing else (`sandbox.ops.faults.unannounced`); the control
plane has to notice it and repair the stack. What is checked is what a user would check: the
drill's ledger against the writer's rows, the queue and the DLQ, and the nodes' own record of
who committed when, never the control plane's word for it.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid

import psycopg
import pytest

from sandbox import stack
from sandbox.drills import drill as drills
from sandbox.ops import dlq, failover, faults, status
from sandbox.ops.load import Client, ClientPolicy, order, poison_customer, send_orders
from sandbox.platform import process
from sandbox.platform.state import StackState
from sandbox.standins import control_plane
from sandbox.standins.aurora import database, events
from sandbox.standins.keeper import Keeper
from sandbox.standins.sqs import journal, restore
from tests.conftest import (
    PATIENCE,
    TEST_QUEUE,
    TEST_RUNNER,
    committed,
    wait_drained,
    wait_for,
)

#: Partitions need the Compose profile's network: tests/compose/test_stack.py drills them.
REPAIRED_BY_ITSELF = [fault for fault in faults.UNANNOUNCED if fault not in faults.PARTITIONS]


RETRYING = ClientPolicy(retries=8)


def healthy_with_both_nodes_streaming(live) -> bool:
    """Every component up, the reader synchronous, and the control plane having seen it so:
    it would fail the writer over now, not restart it in place."""
    report = database.replication_status(live)
    writer, reader = live.writer.name, live.readers[0].name
    said = control_plane.status(live) or {}
    seen = said.get("writer") == writer and said.get("eligible") == [reader]
    return all(stack.health(live).values()) and report[reader].get("sync") == "sync" and seen


def wait_healthy(live) -> None:
    wait_for(
        lambda: healthy_with_both_nodes_streaming(live),
        lambda: f"a healthy stack, both nodes streaming ({stack.health(live)})",
    )


def assert_nothing_lost_or_doubled(report: drills.DrillReport) -> None:
    (queued,) = report.paths
    assert queued.accepted == queued.sent == report.count
    assert (queued.lost, queued.duplicates, queued.queued) == (0, 0, 0), queued
    assert queued.committed_once == queued.accepted, queued  # parked ones were redriven
    assert queued.balanced


def one_writer_at_a_time(live, prefix: str) -> list[str]:
    """Which node committed this drill's orders, in commit order, collapsed: [n1, n2] means n1
    committed until n2 began. Each node stamps its own rows (``committed_node``, its own clock)."""
    with database.connect(live, live.writer.name) as conn:
        rows = conn.execute(
            "SELECT committed_node FROM orders WHERE order_id LIKE %s ORDER BY committed_at",
            (f"{prefix}%",),
        ).fetchall()
    runs: list[str] = []
    for (node,) in rows:
        if not runs or runs[-1] != node:
            runs.append(node)
    return runs


@pytest.mark.parametrize("fault", REPAIRED_BY_ITSELF)
def test_an_unannounced_fault_under_traffic_loses_nothing_and_heals_without_a_command(live, fault):
    wait_healthy(live)  # whatever the test before left, repaired
    writer = live.writer.name
    # A client that retries (the same order id): while the API or the queue is down it gets no
    # answer or a 5xx, and sends again, as an SDK's retries do.
    report = drills.run(live, fault, path="queue", count=1000, rate=100, client=RETRYING)

    assert_nothing_lost_or_doubled(report)
    assert report.detection_seconds is not None, "the control plane never said it noticed"
    wait_healthy(live)
    (done,) = [e for e in report.events if e["event"] == "fault"]  # from outside, on record
    assert done["fault"] == fault
    if fault.startswith("writer"):
        assert live.writer.name != writer, "the writer was not failed over"
        assert report.failover_seconds is not None
        runs = one_writer_at_a_time(live, report.prefix)
        assert runs == [writer, live.writer.name], f"commits interleaved between nodes: {runs}"


def test_a_frozen_writer_resumed_after_its_replacement_takes_no_write(live):
    """A client that kept its connection to the frozen writer, as a pool would: once the writer
    is replaced and sent SIGCONT, that connection must not commit anything."""
    wait_healthy(live)
    old = live.writer.name
    held = psycopg.connect(
        host="127.0.0.1",
        port=live.nodes[old].port,
        dbname=live.db_name,
        user=live.db_user,
        password=live.db_password,
        autocommit=True,
    )
    held.execute("SELECT 1")
    since = events.read(live)[-1]["epoch"]
    _, pid = faults.unannounced(live, "writer-frozen")
    family = [pid, *process.descendants(pid)]
    events.wait_for(live, ("failover-completed",), since=since, timeout=PATIENCE)
    for member in family:
        process.signal_group(member, signal.SIGCONT)
    order_id = f"frozen-{uuid.uuid4().hex[:8]}"
    with pytest.raises(psycopg.OperationalError):
        held.execute(
            "INSERT INTO orders (order_id, customer_id, payload, accepted_at) "
            "VALUES (%s, 1, '{}', now())",
            (order_id,),
        )
    assert not any(process.alive(member) for member in family), "the old writer was not fenced"
    assert live.writer.name != old
    wait_healthy(live)
    assert live.readers[0].name == old  # it rejoined as a reader
    with database.connect(live, live.writer.name) as conn:
        found = conn.execute("SELECT count(*) FROM orders WHERE order_id = %s", (order_id,))
        assert found.fetchone() == (0,)


def test_sandbox_failover_with_the_writer_already_dead_promotes_the_reader(live):
    """With the control plane stopped (so nothing else fails over first)."""
    wait_healthy(live)
    stack.stop(live, "control-plane")
    try:
        old, new = live.writer.name, live.readers[0].name
        faults.unannounced(live, "writer-killed")
        wait_for(lambda: not database.answers(live, old), f"{old} down")
        done = failover.failover(live, "crash", expect=old)
        assert (done.old_writer, done.new_writer) == (old, new)
        assert live.writer.name == new
    finally:
        stack.start(live, "control-plane")
    wait_healthy(live)


def test_a_failover_asked_for_after_the_control_plane_did_it_does_nothing_more(live):
    wait_healthy(live)
    old = live.writer.name
    faults.unannounced(live, "writer-killed")
    wait_for(lambda: live.writer.name != old, "the control plane's failover")
    with pytest.raises(failover.AlreadyFailedOver, match=f"{old} is no longer the writer"):
        failover.failover(live, "crash", expect=old)
    wait_healthy(live)


@pytest.mark.parametrize(
    "name", ["api", "dashboard", "control-plane", "proxy", "consumer", "writer", "reader"]
)
def test_up_repairs_a_component_killed_under_traffic_in_place(live, name):
    """`make up` on a partly-up stack: whatever is down starts again, nothing acknowledged is
    lost, and a second `make up` is a no-op. Whatever would repair it by itself is stopped first
    (the control plane, or for the control plane its keeper), so that `up` is what repairs it."""
    wait_healthy(live)
    if name == "control-plane":
        Keeper().stop(live)
        live.save()
    else:
        stack.stop(live, "control-plane")
    target = {"writer": live.writer.name, "reader": live.readers[0].name}.get(name, name)
    prefix = f"repair-{name}-{uuid.uuid4().hex[:6]}"
    ledger: list = []
    sender = threading.Thread(
        target=lambda: ledger.extend(send_orders(live, 300, 50, prefix=prefix))
    )
    sender.start()
    try:
        wait_for(lambda: committed(live, prefix), f"{prefix}* flowing")
        pid = live.pids[target]
        process.signal_tree(pid, signal.SIGKILL, spare=live.pids.values())
        wait_for(lambda: not process.alive(pid), f"{target} dead")
        lines: list[str] = []
        stack.up(stack.Options(queue=TEST_QUEUE, runner=TEST_RUNNER), report=lines.append)
        assert any(line.startswith(f"repairing {target}") for line in lines), lines
    finally:
        sender.join()
        stack.start(live, "control-plane")  # a no-op once `up` has repaired it
    again: list[str] = []
    stack.up(stack.Options(queue=TEST_QUEUE, runner=TEST_RUNNER), report=again.append)
    assert not any(line.startswith("repairing") for line in again), again
    wait_healthy(live)
    accepted = {s.order_id for s in ledger if s.accepted}
    rows = wait_drained(live, prefix, len(accepted))
    assert accepted <= set(rows) and max(rows.values(), default=1) == 1


def test_localstack_killed_under_traffic_comes_back_with_every_acknowledged_order(
    live, unknown_poison_customer
):
    """SQS is durable and LocalStack is not: the SQS stand-in's journal holds every message
    before its 202. LocalStack is killed under traffic, with orders queued (the consumer held)
    and a poison order parked; the control plane restarts it and restores the queue and the DLQ,
    with no command. Counted against the client's ledger and the writer's rows."""
    wait_healthy(live)
    client = Client(live)
    parked = f"ls-poison-{uuid.uuid4().hex[:6]}"
    assert client.post(order(parked, poison_customer())).accepted
    client.close()
    try:
        _localstack_killed_with_orders_queued(live, parked)
    finally:  # the tests after this one start with the consumer running and an empty DLQ
        stack.start(live, "consumer")
        dlq.purge(live)


def _localstack_killed_with_orders_queued(live: StackState, parked: str) -> None:
    wait_for(lambda: [p.order_id for p in dlq.peek(live)] == [parked], f"{parked} parked")
    early = f"ls-early-{uuid.uuid4().hex[:6]}"
    wait_drained(live, early, sum(s.accepted for s in send_orders(live, 20, 20, prefix=early)))
    held = journal.read(live.run_dir).messages
    mine = {key: entry for key, entry in held.items() if key[0].startswith(early)}
    assert len(mine) == 20 and restore._committed(live, mine) == set(mine), "not seen committed"
    stack.stop(live, "consumer")  # on purpose: the orders stay queued
    prefix = f"ls-{uuid.uuid4().hex[:6]}"
    ledger: list = []
    sender = threading.Thread(
        target=lambda: ledger.extend(send_orders(live, 300, 50, prefix=prefix, policy=RETRYING))
    )
    since = time.time()
    sender.start()
    try:
        wait_for(lambda: stack.queued(live)[0] >= 100, "100 orders queued")
        faults.unannounced(live, "localstack-killed")
        restored = events.wait_for(live, ("queue-restored",), since=since, timeout=PATIENCE)
    finally:
        sender.join()
    acked = {s.order_id for s in ledger if s.accepted}
    assert len(acked) == 300, "the client retries until each order is acknowledged"
    assert restored["to_dlq"] >= 1 and restored["to_queue"] >= 100, restored
    with database.connect(live, live.writer.name) as conn:  # nothing commits meanwhile
        back = [key[0] for key in journal.read(live.run_dir).messages]
        done = conn.execute("SELECT count(*) FROM orders WHERE order_id = ANY(%s)", (back,))
        assert done.fetchone() == (0,), "a committed order was put back"
    # Back where it was. A poison order an earlier test purged within a visibility timeout of
    # its last receive may come back too: it may have been on its way to the DLQ then, and a
    # restore puts back what it cannot be sure was thrown away. None of this test's traffic.
    in_dlq = [p.order_id for p in dlq.peek(live)]
    assert parked in in_dlq and len(in_dlq) == restored["to_dlq"], (in_dlq, restored)
    assert not [order for order in in_dlq if order.startswith(prefix)], in_dlq
    stack.start(live, "consumer")
    rows = wait_drained(live, prefix, len(acked))
    assert set(rows) == acked and max(rows.values()) == 1, "lost or doubled"
    assert stack.queued(live) == (0, len(in_dlq))
    assert status.collect(live)["restored_with_localstack"] >= restored["to_queue"] + 1
    wait_healthy(live)


def test_up_after_every_process_died_starts_them_again_on_their_data(live):
    """As after a reboot or a crash of the whole machine: nothing runs, the data is there.
    `make up` brings every component back and the committed orders with it."""
    wait_healthy(live)
    prefix = f"reboot-{uuid.uuid4().hex[:6]}"
    ledger = send_orders(live, 50, 50, prefix=prefix)
    kept = wait_drained(live, prefix, sum(s.accepted for s in ledger))
    pids = dict(live.pids)
    for pid in pids.values():
        process.signal_tree(pid, signal.SIGKILL)
    wait_for(lambda: not any(process.alive(pid) for pid in pids.values()), "every process dead")
    lines: list[str] = []
    _, started = stack.up(stack.Options(queue=TEST_QUEUE, runner=TEST_RUNNER), report=lines.append)
    assert not started, "a new stack was made: the old one's data would be gone"
    # "repairing X: ...", or "restarting X: ..." for those LocalStack's repair restarted
    repairs = [line.split(":")[0].split(" ", 1) for line in lines]
    repaired = {words[1] for words in repairs if words[0] in ("repairing", "restarting")}
    assert repaired == set(pids) - {"keeper"}, lines  # the control plane starts its keeper
    wait_healthy(live)
    assert committed(live, prefix) == kept
