"""Crashes around the queued path lose nothing: every accepted order commits exactly once."""

from __future__ import annotations

import threading
import uuid

from sandbox import stack
from sandbox.platform import process
from sandbox.standins import localstack
from sandbox.standins.sqs import depth
from tests.conftest import committed, wait_drained, wait_for

#: Orders committed before the fault: the load is flowing through the consumer, not starting.
FLOWING = 100


def under_load(live, count: int, rate: float, prefix: str):
    """Send orders in the background; returns (thread, ledger)."""
    from sandbox.ops.load import send_orders

    ledger: list = []
    thread = threading.Thread(
        target=lambda: ledger.extend(send_orders(live, count, rate, prefix=prefix))
    )
    thread.start()
    return thread, ledger


def wait_flowing(live, prefix: str) -> None:
    """Until the consumer has committed some of this load: the fault lands mid-stream."""
    wait_for(lambda: len(committed(live, prefix)) >= FLOWING, f"{FLOWING} {prefix}* committed")


def wait_in_flight(live) -> None:
    """Until the consumer holds received, undeleted messages: a batch is in the middle."""
    sqs = localstack.client(live, "sqs")
    wait_for(lambda: depth(sqs, live.queue_url).in_flight > 0, "a batch in flight", interval=0.02)


def assert_exactly_once(live, ledger, prefix):
    accepted = {s.order_id for s in ledger if s.accepted}
    assert len(accepted) == len(ledger), (
        "the API refused orders: this test only breaks the consumer side"
    )
    rows = wait_drained(live, prefix, len(accepted))
    assert set(rows) == accepted
    assert max(rows.values()) == 1
    assert stack.queued(live) == (0, 0)


def test_the_consumer_runner_killed_mid_batch_loses_and_duplicates_nothing(live):
    prefix = f"sigkill-{uuid.uuid4().hex[:6]}"
    thread, ledger = under_load(live, 800, 100, prefix)
    wait_flowing(live, prefix)
    wait_in_flight(live)
    old = live.pids["consumer"]
    stack.kill(live, "consumer")
    assert not process.alive(old)
    # Down until its absence shows: orders wait in the queue (the killed batch's reappear too).
    sqs = localstack.client(live, "sqs")
    wait_for(lambda: depth(sqs, live.queue_url).visible > 0, "orders waiting for a consumer")
    stack.start(live, "consumer")
    thread.join()
    assert_exactly_once(live, ledger, prefix)


def test_pgbouncer_restarted_under_load_loses_nothing(live):
    prefix = f"proxy-{uuid.uuid4().hex[:6]}"
    thread, ledger = under_load(live, 800, 100, prefix)
    wait_flowing(live, prefix)
    old = live.pids["proxy"]
    stack.restart(live, "proxy")
    assert live.pids["proxy"] != old
    thread.join()
    assert_exactly_once(live, ledger, prefix)
