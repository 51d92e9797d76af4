"""The compose file alone, as any Docker host runs it: ``docker compose up --wait`` with nothing
set but its ports (testcontainers' `DockerCompose` drives it), no state or data on the host, the
stack reached only through its published ports and its ``sandbox`` CLI service: 1,000 orders
through the API, a poison order redriven, traffic, a crash drill and a partition drill with the
queued path exact, the dashboard in a real browser, and ``down -v`` leaving no container,
network or volume.

One stack for the module, its tests in order; the image is the one the session builds (the
fixture's ``build``: cached layers when the code has not changed)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import sync_playwright
from testcontainers.compose import DockerCompose

from sandbox.ops.load import Api, send_orders
from sandbox.platform import compose
from sandbox.stack import DEFAULT_PORTS
from tests.conftest import PATIENCE, wait_for
from tests.dashboard.test_browser import CHROMIUM, FLAGS, queue_depth, until

pytestmark = pytest.mark.integration


@dataclass
class Plain:
    """A stack the file started by itself, and how a user on the host reaches it."""

    stack: DockerCompose
    project: str
    ports: dict[str, int]

    def run(self, service: str, *argv: str, timeout: float = PATIENCE) -> str:
        """``docker compose run --rm SERVICE ARGV`` (the CLI, or the tools); its stdout."""
        run = [*self.stack.docker_compose_command(), "run", "--rm", "-T", "-e", "COLUMNS=200"]
        command = [*run, service, *argv]  # wide: a table never wraps an order id
        done = subprocess.run(
            command,
            cwd=self.stack.context,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr[-2000:]}"
        return done.stdout

    def read(self, name: str) -> str:
        """A file of the run volume (the host has no copy), read in a running container: quicker
        than a one-off one, and a test polls it."""
        out, err, code = self.stack.exec_in_container(
            ["cat", f"{compose.RUN_VOLUME}/{name}"], "aws"
        )
        assert code == 0, f"reading {name}: {err}"
        return out

    def state(self) -> dict[str, Any]:
        """The stack's own record, in its run volume."""
        return json.loads(self.read("state.json"))

    def committed(self, prefix: str) -> dict[str, int]:
        """Order id -> rows, counted on the writer through its published port."""
        state = self.state()
        writer = next(node for node in state["nodes"].values() if node["role"] == "writer")
        with psycopg.connect(
            host="127.0.0.1",
            port=self.ports[writer["name"]],
            user="postgres",
            password=state["admin_password"],
            dbname=state["db_name"],
            connect_timeout=5,
        ) as conn:
            rows = conn.execute(
                "SELECT order_id, count(*) FROM orders WHERE order_id LIKE %s GROUP BY order_id",
                (f"{prefix}%",),
            ).fetchall()
        return dict(rows)

    def traffic(self) -> dict[str, Any]:
        """The background traffic's own report, in the run volume."""
        return json.loads(self.read("traffic.json"))

    def names(self) -> list[str]:
        """The names of the project's running containers."""
        label = f"label=com.docker.compose.project={self.project}"
        argv = ["docker", "ps", "--filter", label, "--format", "{{.Names}}"]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()

    def listed(self, kind: str) -> list[str]:
        """The project's containers, networks or volumes the engine still has."""
        label = f"label=com.docker.compose.project={self.project}"
        argv = ["docker", *kind.split(), "-q", "--filter", label]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def free_ports() -> dict[str, int]:
    holders = [socket.socket() for _ in DEFAULT_PORTS]
    for holder in holders:
        holder.bind(("127.0.0.1", 0))
    ports = {name: h.getsockname()[1] for name, h in zip(DEFAULT_PORTS, holders, strict=True)}
    for holder in holders:
        holder.close()
    return ports


#: A poison order parks after 8 receives 2 s apart, not the guidance's 25 of 6 s (2.5 minutes).
RETRY_BUDGET = {"SANDBOX_MAX_RECEIVE_COUNT": "8", "SANDBOX_VISIBILITY_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def plain(engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plain]:
    """The file brought up as a user would, with its own project and free ports (the variables
    a user may set in an env file); down with its volumes even if a test fails."""
    project = f"nzrpo-plain-{uuid.uuid4().hex[:6]}"
    ports = free_ports()
    env_file = tmp_path_factory.mktemp("plain") / "stack.env"
    lines = [f"COMPOSE_PROJECT_NAME={project}"]
    lines += [f"SANDBOX_PORT_{name.upper()}={port}" for name, port in ports.items()]
    lines += [f"{name}={value}" for name, value in RETRY_BUDGET.items()]
    env_file.write_text("\n".join(lines) + "\n")
    stack = DockerCompose(
        context=compose.COMPOSE_FILE.parent,
        compose_file_name=compose.COMPOSE_FILE.name,
        env_file=str(env_file),
        build=True,  # the image of this checkout: cached layers, seconds when unchanged
        wait=True,
    )
    found = Plain(stack, project, ports)
    try:
        stack.start()
        yield found
    finally:
        stack.stop(down=True)


def test_up_wait_alone_starts_every_server_after_its_one_shots(plain: Plain):
    shown = subprocess.run(
        [*plain.stack.docker_compose_command(), "ps", "-a", "--format", "json"],
        cwd=plain.stack.context,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [json.loads(line) for line in shown.splitlines() if line.strip()]
    if len(rows) == 1 and isinstance(rows[0], list):  # older Compose: one JSON array
        rows = rows[0]
    seen = {row["Service"]: (row["State"], row.get("Health", "")) for row in rows}
    servers = ["aws", "n1", "n2", "proxy", "api", "control-plane", "dashboard"]
    assert seen == {
        "setup": ("exited", ""),
        "init": ("exited", ""),
        "consumer": ("running", ""),
        **{name: ("running", "healthy") for name in servers},
    }
    assert {row["ExitCode"] for row in rows if row["Service"] in ("setup", "init")} == {0}
    state = plain.state()
    assert (state["runtime"], state["project"]) == ("compose", plain.project)
    assert state["ports"] == plain.ports and state["bootstrapped"] and state["client_id"]


def test_the_cli_service_reports_a_healthy_stack(plain: Plain):
    shown = plain.run("sandbox", "status")
    assert "writer: n1" in shown
    assert "streaming / sync" in shown  # the reader cloned itself and is synchronous
    assert f"http://127.0.0.1:{plain.ports['dashboard']}" in shown  # where a browser opens it


def test_a_thousand_orders_through_the_published_api_port_commit_exactly_once(plain: Plain):
    token = plain.run("sandbox", "token").strip()
    api = Api(f"http://127.0.0.1:{plain.ports['api']}", f"Bearer {token}")
    prefix = f"plain-{uuid.uuid4().hex[:6]}"
    ledger = send_orders(api, 1000, rate=200, prefix=prefix)
    assert [s.status for s in ledger if not s.accepted] == []

    def all_in() -> dict[str, int] | None:
        found = plain.committed(prefix)
        return found if len(found) == 1000 else None

    rows = wait_for(all_in, "1,000 orders committed")
    assert set(rows) == {s.order_id for s in ledger}
    assert sum(rows.values()) == 1000  # counted on the writer: no order twice


def test_a_poison_order_parks_in_the_dlq_and_a_redrive_from_the_cli_service_commits_it(
    plain: Plain,
):
    queue = plain.state()["queue"]  # the env file's budget, as setup wrote it for the stack
    assert (queue["max_receive_count"], queue["visibility_timeout_seconds"]) == (8, 2)
    said = plain.run("sandbox", "send", "--poison")
    order_id = json.loads(said.splitlines()[0].split(" ", 1)[1])["order_id"]  # 202 {...}
    fix = re.search(r"^fix: `\S*sandbox customer add (\d+)`,", said, re.M)  # its own customer
    assert fix, said
    wait_for(
        lambda: "DLQ: 1 visible" in plain.run("sandbox", "status"), "the poison order in the DLQ"
    )
    assert order_id in plain.run("sandbox", "dlq", "list")
    assert "added" in plain.run("sandbox", "customer", "add", fix.group(1))
    assert "redrove 1" in plain.run("sandbox", "dlq", "redrive")
    assert wait_for(lambda: plain.committed(order_id), "the redriven order") == {order_id: 1}


def test_traffic_started_from_the_cli_service_outlives_it_and_stops_when_asked(plain: Plain):
    """The CLI service's container is gone when `traffic start` returns: the traffic runs in a
    one-off container of its own, seen and stopped through its report and request files."""
    assert "traffic at 20/s" in plain.run("sandbox", "traffic", "start", "--rate", "20")
    wait_for(lambda: plain.traffic().get("accepted", 0) >= 20, "traffic still flowing")
    stopped = plain.run("sandbox", "traffic", "stop")
    assert "traffic stopped: sent" in stopped, stopped
    report = plain.traffic()
    assert report["finished"] and report["why"] == "asked to stop", report
    assert report["accepted"] and not report["errors"], report
    wait_for(  # its one-off container went with it
        lambda: not [name for name in plain.names() if "sandbox-run" in name],
        lambda: f"the traffic's container gone ({plain.names()})",
    )


def test_a_crash_drill_from_the_cli_service_loses_nothing_on_the_queue(plain: Plain):
    argv = ["drill", "--fault", "crash", "--path", "both", "--count", "300", "--rate", "60"]
    plain.run("sandbox", *argv, "--json", f"{compose.RUN_VOLUME}/plain-drill.json")
    report = json.loads(plain.read("plain-drill.json"))
    paths = {path["path"]: path for path in report["paths"]}
    queued = paths["queue"]
    counted = ("accepted", "committed_once", "lost", "duplicates")
    assert [queued[key] for key in counted] == [300, 300, 0, 0], queued
    assert paths["direct"]["lost"] == 0  # sync replication: an acknowledged write survives
    state = plain.state()
    assert state["nodes"]["n2"]["role"] == "writer"  # failed over, in the volume's state
    wait_for(  # the ex-writer rewound itself where it runs and streams again
        lambda: "streaming / sync" in plain.run("sandbox", "status"),
        "n1 rejoined as a synchronous reader",
    )


def test_a_partition_drill_from_the_cli_service_fences_the_cut_off_writer(plain: Plain):
    """The writer's container off the network while its server runs: fenced, failed over;
    the queued path loses and doubles nothing."""
    argv = ["drill", "--fault", "writer-partitioned", "--path", "both", "--count", "300"]
    plain.run(
        "sandbox", *argv, "--rate", "60", "--json", f"{compose.RUN_VOLUME}/plain-partition.json"
    )
    report = json.loads(plain.read("plain-partition.json"))
    queued = next(path for path in report["paths"] if path["path"] == "queue")
    counted = ("accepted", "committed_once", "lost", "duplicates")
    assert [queued[key] for key in counted] == [300, 300, 0, 0], queued
    kinds = [event["event"] for event in report["events"]]
    assert kinds.index("writer-fenced") < kinds.index("failover-completed"), kinds


def test_the_workshops_other_commands_work_from_the_cli_service(plain: Plain):
    """What a host with only Docker runs besides drills: load, a switchover (n2 the writer
    for the stop and up below), events, the dashboard's URL, a purge of an empty DLQ (a hang
    and a failback are test_stack.py's, through the same code)."""
    assert "accepted 50" in plain.run("sandbox", "load", "--count", "50", "--rate", "50")
    plain.run("sandbox", "failover", "--mode", "switchover")
    assert "writer: n2" in plain.run("sandbox", "status")
    assert plain.run("sandbox", "events").count("RDS-EVENT-0071") >= 3  # failover completed
    assert f"http://127.0.0.1:{plain.ports['dashboard']}" in plain.run("sandbox", "dashboard")
    plain.run("sandbox", "dlq", "purge", "--yes")


def test_a_stopped_stack_comes_back_on_its_data_after_failovers(plain: Plain):
    """`docker compose stop`, then `up --wait` again (a laptop's lid closed, a reboot): the
    state in the volume keeps the roles the failovers left, both nodes start together and
    the reader waits for the writer, nothing committed is lost."""
    writer = next(n["name"] for n in plain.state()["nodes"].values() if n["role"] == "writer")
    before = plain.committed("plain-")
    subprocess.run(
        [*plain.stack.docker_compose_command(), "stop"],
        cwd=plain.stack.context,
        capture_output=True,
        check=True,
        timeout=PATIENCE,
    )
    plain.stack.start()
    after = plain.state()
    assert next(n["name"] for n in after["nodes"].values() if n["role"] == "writer") == writer
    wait_for(
        lambda: "streaming / sync" in plain.run("sandbox", "status"), "the reader streaming again"
    )
    assert plain.committed("plain-") == before


def test_the_dashboard_answers_on_its_published_port_in_a_real_browser(plain: Plain):
    assert Path(CHROMIUM).exists(), "no /usr/bin/chromium: `make test` installs it (as root)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = chromium.new_page(viewport={"width": 1500, "height": 1800})
            page.set_default_timeout(PATIENCE * 1000)
            page.goto(f"http://127.0.0.1:{plain.ports['dashboard']}")
            until(lambda: queue_depth(page) == 0, "the page showing the stack's empty queue")
        finally:
            chromium.close()


def test_down_with_volumes_leaves_nothing_of_the_stack(plain: Plain):
    assert plain.listed("volume ls") != []  # the run and data volumes, until now
    plain.stack.stop(down=True)
    assert plain.listed("ps -a") == []
    assert plain.listed("network ls") == []
    assert plain.listed("volume ls") == []
    # nothing of it was ever on the host (a volume's path leaking into a container's own
    # `docker compose` call once made the engine bind-mount /sandbox/run from the host)
    assert not Path("/sandbox").exists()
