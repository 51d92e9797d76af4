"""The whole stack on the Compose runtime: up, 200 orders, a crash failover, failback, down.

With a real Docker engine this proves the profile; without one (the machines this was built on)
the stand-in runs each service's command from the compose file as a host process, which proves
everything but the image, the mounts and the namespaces (see `standin_docker.py`).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sandbox import compose, database, failover, process, stack
from sandbox.load import send_orders
from sandbox.state import StackState
from tests.conftest import TEST_QUEUE, TEST_RUNNER, wait_drained

pytestmark = pytest.mark.integration


@pytest.fixture
def compose_stack(tmp_path: Path, docker, monkeypatch: pytest.MonkeyPatch):
    """A stack of its own on free ports, started through ``docker``; down even if a test fails."""
    run_dir = tmp_path / "stack"
    monkeypatch.setenv("SANDBOX_RUN_DIR", str(run_dir))
    options = stack.Options(
        queue=TEST_QUEUE, runner=TEST_RUNNER, auto_ports=True, runtime="compose"
    )
    try:
        state, started = stack.up(options, report=lambda step: print(f"[compose] {step}"))
        assert started
        yield state, docker
    finally:
        try:
            stack.down(force=True, report=lambda step: None, directory=run_dir)
        except Exception as error:  # up failed before a state existed: nothing to stop
            print(f"[compose] down: {error}")


def test_the_whole_stack_runs_on_compose_commits_once_and_fails_over(compose_stack):
    state, docker = compose_stack
    state: StackState
    assert state.runtime == "compose"
    assert stack.health(state) == dict.fromkeys(state.pids, True)
    if not docker.real:
        ups = [call[-1] for call in docker.calls() if "up" in call]
        assert ups == [item.name for item in stack.components()]  # one service each, in order
        tools = [call[call.index("tools") + 1] for call in docker.calls() if "tools" in call]
        assert tools == ["initdb", "pg_basebackup"]

    prefix = f"compose-{uuid.uuid4().hex[:6]}"
    ledger = send_orders(state, 200, rate=100, prefix=prefix)
    assert [s.status for s in ledger if not s.accepted] == []
    rows = wait_drained(state, prefix, 200)
    assert set(rows) == {s.order_id for s in ledger}
    assert max(rows.values()) == 1

    old_pid = state.pids["n1"]
    done = failover.failover(state, "crash")
    assert (done.old_writer, done.new_writer) == ("n1", "n2")
    assert state.writer.name == "n2"
    assert not process.alive(old_pid)
    assert process.alive(state.pids["n1"]) and state.pids["n1"] != old_pid
    assert database.is_streaming(state, "n1")
    report = database.replication_status(state)
    assert report["n1"]["in_recovery"] and report["n1"]["sync"] == "sync"

    failover.failback(state)  # a switchover: clean stop (SIGINT), pg_controldata, rewind
    assert state.writer.name == "n1"
    assert database.is_streaming(state, "n2")
    if not docker.real:
        tools = [call[call.index("tools") + 1] for call in docker.calls() if "tools" in call]
        assert tools[2:] == ["pg_rewind", "pg_controldata", "pg_rewind"]

    stack.down(force=True, report=lambda step: None, directory=Path(state.run_dir))
    assert not any(process.alive(pid) for pid in state.pids.values())
    project = compose.project_name(state.run_dir)
    if docker.real:
        left = process.run(["docker", "compose", "-p", project, "ps", "-a", "-q"]).stdout
        assert left.strip() == ""
    else:
        assert docker.calls()[-1][-3:] == [project, "down", "--remove-orphans"]
