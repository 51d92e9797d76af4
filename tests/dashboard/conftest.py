"""Fixtures for the dashboard's tests: the page as `streamlit.testing.v1.AppTest` sees it, on the
session's real stack (`live`), left as it was found (traffic stopped, n1 the writer)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import jobs
from sandbox import failover, traffic
from sandbox.state import StackState, load

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/dashboard/" in str(item.fspath):
            item.add_marker(pytest.mark.dashboard)


def open_page() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=60).run()


def notices(at: AppTest) -> list[str]:
    """Every message the page shows: action outcomes, the job panel, warnings."""
    return [e.value for kind in (at.success, at.error, at.info, at.warning) for e in kind]


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def wait_page(at: AppTest, ready: Callable[[AppTest], object], timeout: float, what: str) -> None:
    """Rerun the page (as its one-second refresh would) until ``ready(at)``; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, at.exception
        if ready(at):
            return
        assert time.monotonic() < deadline, f"{what} not seen after {timeout:.0f} s: {notices(at)}"
        time.sleep(0.5)


def settle_jobs(timeout: float = 180) -> None:
    """Wait for this process's background job (a failover or drill started from an AppTest)."""
    deadline = time.monotonic() + timeout
    while (job := jobs.current()) is not None and job.running and time.monotonic() < deadline:
        time.sleep(0.2)


def restore(live: StackState) -> None:
    """No traffic, n1 the writer, and ``live`` as the state file says.

    The page acts on a state it loads itself (as the CLI does), so failovers it ran changed the
    roles and pids on disk only; the session's other tests hold ``live`` and must see them.
    """
    state = load(Path(live.run_dir))
    traffic.stop(state)
    failover.failback(state)
    vars(live).update(vars(state))


@pytest.fixture
def page(live: StackState) -> Iterator[AppTest]:
    """The dashboard on the live stack, restored afterwards."""
    try:
        yield open_page()
    finally:
        settle_jobs()
        restore(live)
