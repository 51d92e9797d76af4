"""Fixtures for the dashboard's tests: the page as `streamlit.testing.v1.AppTest` sees it, on the
session's real stack (`live`), left as it was found (traffic stopped, n1 the writer)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import clicks, jobs
from sandbox.ops import failover, traffic
from sandbox.platform.state import StackState, load
from sandbox.standins.aurora import database
from tests.conftest import PATIENCE, wait_for

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/dashboard/" in str(item.fspath):
            item.add_marker(pytest.mark.dashboard)


def open_page() -> AppTest:
    """A fresh page: no notice left from another test (AppTest's sessions share one id)."""
    clicks.forget()
    return AppTest.from_file(str(APP), default_timeout=PATIENCE).run()


def notices(at: AppTest) -> list[str]:
    """Every message the page shows: action outcomes, the job panel, warnings."""
    return [e.value for kind in (at.success, at.error, at.info, at.warning) for e in kind]


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def wait_page(at: AppTest, ready: Callable[[AppTest], object], what: str) -> None:
    """Rerun the page (as its one-second refresh would) until ``ready(at)``; fail, with what the
    page said, after `PATIENCE`."""

    def rerun() -> object:
        at.run()
        assert not at.exception, at.exception
        return ready(at)

    wait_for(rerun, lambda: f"{what} (the page said {notices(at)})")


def settle_jobs() -> None:
    """Wait for this process's background job (a failover or drill started from an AppTest)."""
    wait_for(
        lambda: (job := jobs.current()) is None or not job.running,
        lambda: f"the end of the page's job {getattr(jobs.current(), 'name', None)}",
        interval=0.2,
    )


def restore(live: StackState) -> None:
    """No traffic, n1 the writer, and ``live`` as the state file says.

    The page acts on a state it loads itself (as the CLI does), so failovers it ran changed the
    roles and pids on disk only; the session's other tests hold ``live`` and must see them.
    """
    state = load(Path(live.run_dir))
    traffic.stop(state)
    wait_for(  # whatever a test did to the cluster, the control plane has repaired it
        lambda: database.is_streaming(state, state.readers[0].name),
        "a writer with its reader streaming",
    )
    failover.failback(state)
    vars(live).update(vars(state))


@pytest.fixture
def page(live: StackState) -> Iterator[AppTest]:
    """The dashboard on the live stack, as a test expects to find it (n1 the writer, whatever
    ran before in the session) and restored afterwards."""
    restore(live)
    try:
        yield open_page()
    finally:
        settle_jobs()
        restore(live)
