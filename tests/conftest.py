"""Shared fixtures. Integration tests run on a real stack of their own, on free ports, in a
temporary run dir, so they never touch a workshop stack started with `make up`."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from sandbox import database, stack
from sandbox.queue import QueueSettings
from sandbox.state import RunnerSettings, StackState

# Small numbers keep the DLQ tests short; everything else is the guidance's default. The function
# timeout may not exceed the visibility timeout (Lambda refuses such a mapping, and so does `up`).
TEST_QUEUE = QueueSettings(max_receive_count=5, visibility_timeout_seconds=2)
TEST_RUNNER = RunnerSettings(function_timeout_seconds=2)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackState]:
    """A running stack for the whole session (started once, torn down at the end)."""
    run_dir = tmp_path_factory.mktemp("stack")
    previous = os.environ.get("SANDBOX_RUN_DIR")
    os.environ["SANDBOX_RUN_DIR"] = str(run_dir)
    options = stack.Options(queue=TEST_QUEUE, runner=TEST_RUNNER, auto_ports=True)
    state, _ = stack.up(options, report=lambda step: print(f"[stack] {step}"))
    try:
        yield state
    finally:
        stack.down(force=True, report=lambda step: None)
        if previous is None:
            os.environ.pop("SANDBOX_RUN_DIR", None)
        else:
            os.environ["SANDBOX_RUN_DIR"] = previous


def committed(state: StackState, prefix: str) -> Counter[str]:
    """How many rows each order id with ``prefix`` has, read from the writer (not the proxy)."""
    with database.connect(state, state.writer.name) as conn:
        rows = conn.execute(
            "SELECT order_id FROM orders WHERE order_id LIKE %s", (f"{prefix}%",)
        ).fetchall()
    return Counter(row[0] for row in rows)


def wait_drained(state: StackState, prefix: str, expected: int, timeout: float = 180) -> Counter:
    """Wait until ``expected`` orders with ``prefix`` are committed and the queue is empty."""
    deadline = time.monotonic() + timeout
    while True:
        rows = committed(state, prefix)
        in_queue, _ = stack.queued(state)
        if (len(rows) >= expected and in_queue == 0) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)
