"""The commands added with the dashboard: `sandbox traffic start|stop`, `sandbox dashboard`."""

from __future__ import annotations

import re
import time

import httpx

from sandbox import stack
from sandbox.ops import traffic
from sandbox.platform.state import StackState, load
from sandbox.standins.dashboard import dashboard_url
from tests.conftest import wait_for
from tests.integration.test_cli import sandbox


def test_traffic_runs_in_the_background_until_stopped(live: StackState):
    began = time.time()
    # The bound is the traffic's own safety stop, far past what the test needs.
    started = sandbox(live, "traffic", "start", "--rate", "25", "--max-seconds", "600")
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("traffic at 25/s for at most 600 s (pid ")
    try:
        again = sandbox(live, "traffic", "start")
        assert again.returncode == 1 and "already running" in again.stderr
        wait_for(
            lambda: (traffic.stats(live) or {}).get("accepted", 0) >= 50,
            "50 accepted in the traffic's report",
        )
    finally:
        stopped = sandbox(live, "traffic", "stop")
    assert stopped.returncode == 0, stopped.stderr
    sent, accepted = map(int, re.findall(r"sent (\d+), accepted (\d+)", stopped.stdout)[0])
    assert accepted == sent >= 50 and "errors 0" in stopped.stdout
    report = traffic.stats(live)
    assert report is not None and not report["running"] and report["finished"]
    assert sandbox(live, "traffic", "stop").stdout.strip() == "no traffic running"

    def since_the_start() -> int:  # every second since the traffic started, however long ago
        return sum(n for _, n in traffic.committed_per_second(live, int(time.time() - began) + 2))

    wait_for(  # the last accepted orders may still be in the queue
        lambda: since_the_start() >= accepted,
        f"commits per second adding up to the {accepted} accepted",
    )


def test_dashboard_prints_its_url_and_starts_it_if_needed(live: StackState):
    url = dashboard_url(live)
    stack.stop(live, "dashboard")
    assert "dashboard" not in load().pids
    result = sandbox(live, "dashboard")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"dashboard: {url}"
    live.pids = load().pids  # the command recorded the new dashboard's pid
    assert httpx.get(f"{url}/_stcore/health", timeout=5).text == "ok"
    again = sandbox(live, "dashboard")
    assert again.stdout.strip() == f"dashboard: {url}" and load().pids == live.pids
