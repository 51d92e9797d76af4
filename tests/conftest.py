"""Shared fixtures. Integration tests run on a real stack of their own, on free ports, in a
temporary run dir, so they never touch a workshop stack started with `make up`."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox import stack
from sandbox.ops import dlq
from sandbox.platform.state import StackState
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings
from sandbox.standins.aurora import database

# Small numbers keep the DLQ tests short; everything else is the guidance's default. The function
# timeout may not exceed the visibility timeout (Lambda refuses such a mapping, and so does `up`).
TEST_QUEUE = QueueSettings(max_receive_count=5, visibility_timeout_seconds=2)
TEST_RUNNER = RunnerSettings(function_timeout_seconds=2)
#: How long a test waits for what it asserts before it fails. Every wait ends as soon as its
#: condition holds, so minutes cost a fast machine nothing and spare a slow one a false failure.
PATIENCE = 300.0
ROOT = Path(__file__).parents[1]


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


@pytest.fixture
def unknown_poison_customer(live: StackState) -> Iterator[None]:
    """For a test that parks and fixes a poison order (the notebook, the workshop script): the
    DLQ empty before it and after it, as the other tests need. (Each poison order names a new
    customer, so a fix made here leaves the next one poison.)"""
    dlq.purge(live)
    yield
    dlq.purge(live)  # if it stopped half-way, its poison order is still parked


def committed(state: StackState, prefix: str) -> Counter[str]:
    """How many rows each order id with ``prefix`` has, read from the writer (not the proxy)."""
    with database.connect(state, state.writer.name) as conn:
        rows = conn.execute(
            "SELECT order_id FROM orders WHERE order_id LIKE %s", (f"{prefix}%",)
        ).fetchall()
    return Counter(row[0] for row in rows)


def wait_for[T](
    check: Callable[[], T],
    what: str | Callable[[], str],
    timeout: float = PATIENCE,
    interval: float = 0.5,
) -> T:
    """Poll ``check`` until it returns something truthy, and return that; once ``timeout``
    seconds have passed, fail naming ``what`` (a callable: described as things stand then)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"{said}: not seen within {timeout:.0f} s (last: {value!r})")
        time.sleep(interval)
    return value


def wait_drained(state: StackState, prefix: str, expected: int) -> Counter[str]:
    """Wait until ``expected`` orders with ``prefix`` are committed and the queue is empty."""
    seen: dict[str, int] = {}

    def drained() -> Counter[str] | None:
        rows = committed(state, prefix)
        seen.update(committed=len(rows), queued=stack.queued(state)[0])
        return rows if seen["committed"] >= expected and seen["queued"] == 0 else None

    return wait_for(drained, lambda: f"{expected} {prefix}* committed, the queue empty ({seen})")


def typed(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A command line as a user types it (a hint the tools print, a line of the docs): through
    the shell, in the project's folder, with nothing on stdin."""
    return subprocess.run(
        line,
        shell=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        stdin=subprocess.DEVNULL,
    )
