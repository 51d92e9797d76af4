"""The whole stack on the Compose runtime from the host's CLI, on a real Docker engine: every
server a container of compose/docker-compose.yml (image built once per run), the host's run dir
and data root mounted in place of the volumes, then what a workshop does to it, counted: a writer
killed unannounced and repaired by the control plane in its container, one frozen (its container
paused) and fenced, the writer and then the reader cut off the network while they run
(partitions), the API and LocalStack killed inside their containers and restarted by the
engine (the queue restored from its journal), a short `sandbox chaos` run, the dashboard in a
real browser crashing the writer from its container, a crash failover and failback through the
host's own code, and `down` leaving no container or network.
The file alone (1,000 orders, the DLQ, the drills from its CLI service) is test_plain.py.

One stack for the module, its tests in workshop order (pytest runs a module's tests in file
order); each test waits for the state it needs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from playwright.sync_api import sync_playwright

from sandbox import stack
from sandbox.drills import chaos, drill
from sandbox.ops import failover, faults, traffic
from sandbox.ops.load import send_orders
from sandbox.platform import compose, process, runtime
from sandbox.platform.state import StackState
from sandbox.standins.aurora import database, events
from sandbox.standins.dashboard import dashboard_url
from tests.conftest import PATIENCE, TEST_QUEUE, TEST_RUNNER, committed, wait_drained, wait_for
from tests.dashboard.conftest import restore
from tests.dashboard.test_browser import (
    CHROMIUM,
    FLAGS,
    STOP_ANSWERS,
    alert,
    click,
    queue_depth,
    shows,
    until,
)
from tests.integration.test_control_plane import (
    RETRYING,
    assert_nothing_lost_or_doubled,
    one_writer_at_a_time,
    wait_healthy,
)

pytestmark = pytest.mark.integration


def listed(state: StackState, *flags: str) -> list[dict[str, str]]:
    """`docker ps` of the stack's Compose project, a row per container."""
    project = compose.project_name(state.run_dir)
    argv = ["docker", "ps", *flags, "--filter", f"label=com.docker.compose.project={project}"]
    rows = process.run([*argv, "--format", "{{json .}}"]).stdout.splitlines()
    return [json.loads(row) for row in rows]


def containers(state: StackState, *flags: str) -> dict[str, str]:
    """Service name -> container state (running, exited ...) of the stack's Compose project."""
    return {
        row["Labels"].split("com.docker.compose.service=")[1].split(",")[0]: row["State"]
        for row in listed(state, *flags)
    }


@pytest.fixture(scope="module")
def compose_stack(engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackState]:
    """A stack of its own on free ports, started with the Compose runtime; down even if a test
    fails."""
    run_dir = tmp_path_factory.mktemp("compose") / "stack"
    with mock.patch.dict(os.environ, {"SANDBOX_RUN_DIR": str(run_dir)}):
        options = stack.Options(
            queue=TEST_QUEUE, runner=TEST_RUNNER, auto_ports=True, runtime="compose"
        )
        try:
            state, started = stack.up(options, report=lambda step: print(f"[compose] {step}"))
            assert started
            yield state
        finally:
            if (run_dir / "state.json").exists():
                stack.down(force=True, report=lambda step: None, directory=run_dir)


def test_every_server_runs_in_a_container_of_its_own(compose_stack: StackState):
    state = compose_stack
    assert state.runtime == "compose"
    assert stack.health(state) == dict.fromkeys(state.pids, True)
    assert containers(state) == dict.fromkeys(state.pids, "running")  # the one-shots are done
    for name, pid in state.pids.items():  # the state's pid is the server's, in its container
        container = compose.Compose().container(state, name)
        assert container is not None, name
        assert pid != 1  # the engine's init is pid 1; the server is below it
        ran = container.exec_run(["cat", f"/proc/{pid}/cmdline"])
        assert ran.exit_code == 0 and ran.output, (name, ran.output)


def engine_health(state: StackState) -> dict[str, str]:
    """Service name -> what the engine's healthcheck says ("none" where the file has none)."""
    template = (
        '{{index .Config.Labels "com.docker.compose.service"}} '
        "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"
    )
    ids = [row["ID"] for row in listed(state)]
    shown = process.run(["docker", "inspect", "-f", template, *ids]).stdout
    return dict(line.split() for line in shown.splitlines())


def test_the_engine_sees_every_server_with_a_port_or_heartbeat_healthy(compose_stack: StackState):
    """`docker compose ps` tells a workshop the same: the file's healthchecks pass on a healthy
    stack (the consumer, with neither, has none)."""
    expected = dict.fromkeys(compose_stack.pids, "healthy") | {"consumer": "none"}
    wait_for(
        lambda: engine_health(compose_stack) == expected,
        lambda: f"every healthcheck passing ({engine_health(compose_stack)})",
    )


def queued_path_exact(report: drill.DrillReport) -> None:
    """Every order of the queued path committed exactly once, none lost; every path balanced."""
    queued = next(p for p in report.paths if p.path == "queue")
    assert (queued.accepted, queued.committed_once, queued.lost, queued.duplicates) == (
        report.count,
        report.count,
        0,
        0,
    ), queued
    assert all(p.balanced for p in report.paths)


def test_a_killed_writer_is_failed_over_and_rejoined_by_the_control_plane_alone(
    compose_stack: StackState,
):
    """SIGKILL to the writer and nothing else: the control plane, in its container, notices,
    fails over and starts the old writer again as a reader, through the Docker engine."""
    state = compose_stack
    wait_healthy(state)  # the crash drill before it left both nodes streaming
    writer = state.writer.name
    report = drill.run(state, "writer-killed", "queue", count=300, rate=60)
    assert_nothing_lost_or_doubled(report)
    assert report.detection_seconds is not None, "the control plane never said it noticed"
    wait_healthy(state)
    assert state.writer.name != writer
    assert containers(state) == dict.fromkeys(state.pids, "running")


def test_a_frozen_writer_is_a_paused_container_fenced_and_failed_over(compose_stack: StackState):
    """SIGSTOP in its Compose form: the writer's container paused, every process in it frozen at
    once. The control plane sees the writer stop answering, fences it (the engine kills a paused
    container) and fails over; the queued path loses and doubles nothing."""
    state = compose_stack
    wait_healthy(state)
    writer = state.writer.name
    report = drill.run(state, "writer-frozen", "queue", count=300, rate=60)
    assert_nothing_lost_or_doubled(report)
    kinds = [event["event"] for event in report.events]
    assert kinds.index("fault") < kinds.index("writer-fenced") < kinds.index("failover-completed")
    wait_healthy(state)
    assert state.writer.name != writer
    assert containers(state) == dict.fromkeys(state.pids, "running")


def test_a_writer_cut_off_the_network_while_it_runs_is_fenced_and_takes_no_write_after(
    compose_stack: StackState,
):
    """A partition: the writer's container leaves the network and its server runs on, reached
    by nobody. The control plane fences it (kills the server that still runs, so it could take
    no write were the network back) before the failover completes; the queued path loses and
    doubles nothing, the direct path loses nothing (sync), and the drill's orders were
    committed by the old writer, then by the new one, never back."""
    state = compose_stack
    wait_healthy(state)
    old = state.writer.name
    report = drill.run(state, "writer-partitioned", "both", count=300, rate=60)
    queued_path_exact(report)
    assert next(p for p in report.paths if p.path == "direct").lost == 0
    assert report.detection_seconds is not None, "the control plane never said it noticed"
    kinds = [event["event"] for event in report.events]
    assert "fault" in kinds and kinds.index("fault") < kinds.index("writer-fenced"), kinds
    assert kinds.index("writer-fenced") < kinds.index("failover-completed"), kinds
    new = state.writer.name
    assert new != old
    assert one_writer_at_a_time(state, report.prefix) == [old, new]
    wait_healthy(state)  # the old writer rejoined, in a new container on the network
    assert containers(state) == dict.fromkeys(state.pids, "running")


def test_a_reader_cut_off_the_network_is_rejoined_and_the_queue_loses_nothing(
    compose_stack: StackState,
):
    """The reader's container leaves the network: the writer's synchronous commits wait for it,
    the control plane fences the reader, ends the writer's half-open stream to it and starts it
    again on the network; the writer stays the writer."""
    state = compose_stack
    wait_healthy(state)
    writer = state.writer.name
    report = drill.run(state, "reader-partitioned", "queue", count=300, rate=60)
    assert_nothing_lost_or_doubled(report)
    assert "reader-rejoined" in [event["event"] for event in report.events]
    assert state.writer.name == writer
    wait_healthy(state)
    assert containers(state) == dict.fromkeys(state.pids, "running")


def restarted(state: StackState, since: float) -> set[str]:
    """The services the control plane has said were restarted since ``since``."""
    return {e["node"] for e in events.read(state, since) if e["event"] == "service-restarted"}


def test_the_api_and_localstack_killed_unannounced_are_restarted_by_the_engine(
    compose_stack: StackState,
):
    """A managed service's crash on Compose: its server killed inside its container, as an OOM
    kill would, and no command. The engine's restart policy brings the same container back
    within seconds; the control plane restores LocalStack's queue from the SQS stand-in's
    journal and says what died and when it was back. The consumer, stopped on purpose so the
    orders stay queued, stays stopped. Counted: the client's ledger against the writer's rows."""
    state = compose_stack
    wait_healthy(state)
    engine = compose.Compose()
    before = {name: engine.run(state, name) for name in ("api", "aws")}
    stack.stop(state, "consumer")  # on purpose: the engine must not restart it
    try:
        _killed_with_the_consumer_stopped(state, engine, before)
    finally:  # the tests after this one find it running
        stack.start(state, "consumer")
    wait_healthy(state)


def _killed_with_the_consumer_stopped(
    state: StackState, engine: compose.Compose, before: dict[str, compose.Run | None]
) -> None:
    prefix = f"managed-{uuid.uuid4().hex[:6]}"
    ledger: list = []
    sender = threading.Thread(
        target=lambda: ledger.extend(send_orders(state, 200, 40, prefix=prefix, policy=RETRYING))
    )
    since = time.time()
    sender.start()
    try:
        wait_for(lambda: stack.queued(state)[0] >= 50, "50 orders queued")
        faults.unannounced(state, "api-killed")
        faults.unannounced(state, "localstack-killed")
        restored = events.wait_for(state, ("queue-restored",), since=since, timeout=PATIENCE)
        wait_for(lambda: {"api", "aws"} <= restarted(state, since), "api and aws restarted")
    finally:
        sender.join()
    for name, was in before.items():  # the engine's restart: the same container, once more
        now = engine.run(state, name)
        assert was is not None and now is not None, name
        assert (now.container, now.restarts) == (was.container, was.restarts + 1), name
        assert since < now.exited < time.time(), name  # what died, and when
    lost = {e["node"]: e for e in events.read(state, since) if e["event"] == "service-lost"}
    assert {"api", "aws"} <= set(lost), lost
    assert containers(state, "-a")["consumer"] == "exited"  # stopped on purpose: still
    assert "consumer" not in state.pids
    acked = {s.order_id for s in ledger if s.accepted}
    assert len(acked) == 200, "the client retries until each order is acknowledged"
    assert restored["to_queue"] >= 50, restored
    stack.start(state, "consumer")
    rows = wait_drained(state, prefix, len(acked))
    assert set(rows) == acked and max(rows.values()) == 1, "lost or doubled"


#: The chaos run's faults: each once (the deck deals every kind before any twice).
CHAOS_KINDS = [
    "api-killed",
    "consumer-killed",
    "control-plane-killed",
    "localstack-killed",
    "writer-killed",
]


def test_a_short_chaos_run_on_the_compose_stack_loses_and_doubles_nothing(
    compose_stack: StackState,
):
    """`sandbox chaos` on the Compose profile, two minutes, seeded: steady traffic through the
    API, an unannounced fault every 20 s (the managed services' repaired by the engine, the
    writer's by the control plane), the stack whole again after each; at the end 0 lost,
    0 duplicates, whole."""
    state = compose_stack
    wait_healthy(state)
    report = chaos.run(state, seed=30, minutes=2, rate=10, interval=20, kinds=CHAOS_KINDS)
    assert report.ok, report.problems
    assert sorted(row.fault for row in report.faults) == CHAOS_KINDS, report.faults
    assert all(row.whole_after_s is not None for row in report.faults), report.faults
    account = report.account
    assert account is not None and account.acknowledged > 0
    assert (account.lost, account.duplicates, account.unexpected) == (0, 0, 0), account
    assert report.whole_at_end, report.not_whole
    assert containers(state) == dict.fromkeys(state.pids, "running")


def test_the_dashboard_crashes_the_writer_from_its_container_in_a_real_browser(
    compose_stack: StackState,
):
    """The page, on its published port: traffic started from it (it runs in the dashboard's
    container: the host sees it by its report), the writer killed from it (through the engine's
    socket), failed over by the control plane, the traffic stopped and the queue drained."""
    state = compose_stack
    wait_healthy(state)
    writer = state.writer.name
    assert Path(CHROMIUM).exists(), "no /usr/bin/chromium: `make test` installs it (as root)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = chromium.new_page(viewport={"width": 1500, "height": 1800})
            page.set_default_timeout(PATIENCE * 1000)
            page.goto(dashboard_url(state))
            until(lambda: queue_depth(page) == 0, "the page with an empty queue")
            click(page, "Start traffic")
            until(lambda: traffic.running(state), "the page's traffic, seen from the host")
            click(page, "Kill the writer (as a crash would)")
            until(lambda: shows(page, re.compile(r"^SIGKILL sent to the writer")), "the kill")
            wait_for(lambda: state.writer.name != writer, "the control plane's failover")
            click(page, "Stop traffic")
            answer = until(lambda: alert(page, STOP_ANSWERS), "the answer to Stop traffic")
            assert answer.startswith("traffic stopped: sent"), answer
            until(lambda: queue_depth(page) == 0, "the queue drained to zero")
        finally:
            chromium.close()
    report = traffic.stats(state)
    assert report and not report["running"] and report["why"] == "asked to stop", report
    assert report["accepted"] and not report["errors"], report  # the queue took every order
    rows = wait_drained(state, "traffic-", report["accepted"])
    assert len(rows) == report["accepted"] and set(rows.values()) == {1}  # each once


def test_a_crash_failover_and_the_failback_rejoin_both_nodes(compose_stack: StackState):
    state = compose_stack
    restore(state)  # n1 the writer again after the drill, n2 streaming
    sent = send_orders(state, 50, 50, prefix="compose-crash")
    assert all(item.accepted for item in sent), sent
    wait_drained(state, "compose-crash-", 50)
    orders = committed(state, "")  # these and what the tests before committed
    before = compose.Compose().container(state, "n1")
    assert before is not None
    done = failover.failover(state, "crash")
    assert (done.old_writer, done.new_writer) == ("n1", "n2")
    after = compose.Compose().container(state, "n1")  # rejoined: a new container, the old gone
    assert runtime.alive(state, "n1") and after is not None and after.id != before.id
    assert compose.engine().containers.list(all=True, filters={"id": before.id}) == []
    assert database.is_streaming(state, "n1")
    report = database.replication_status(state)
    assert report["n1"]["in_recovery"] and report["n1"]["sync"] == "sync"

    failover.failback(state)  # a switchover: clean stop (SIGINT), pg_controldata, rewind
    assert state.writer.name == "n1"
    assert database.is_streaming(state, "n2")
    assert committed(state, "") == orders  # both promotions kept every row, none doubled


def test_down_leaves_no_container(compose_stack: StackState):
    state = compose_stack
    stack.down(force=True, report=lambda step: None, directory=Path(state.run_dir))
    assert not any(runtime.alive(state, item.name) for item in stack.components())
    assert containers(state, "-a") == {}
    project = compose.project_name(state.run_dir)
    left = subprocess.run(
        [
            "docker",
            "network",
            "ls",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={project}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert left.strip() == ""
