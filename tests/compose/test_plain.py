"""The compose file alone, as any Docker host runs it: ``docker compose up --wait`` with nothing
set but its ports (testcontainers' `DockerCompose` drives it), no state or data on the host, the
stack reached only through its published ports and its ``sandbox`` CLI service, and
``down -v`` leaving no container, network or volume.

One stack for the module, its tests in order; the image is the one the session builds (the
fixture's ``build``: cached layers when the code has not changed)."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from testcontainers.compose import DockerCompose

from sandbox import compose
from sandbox.load import Api, send_orders
from sandbox.stack import DEFAULT_PORTS
from tests.conftest import PATIENCE, wait_for

pytestmark = pytest.mark.integration


@dataclass
class Plain:
    """A stack the file started by itself, and how a user on the host reaches it."""

    stack: DockerCompose
    project: str
    ports: dict[str, int]

    def run(self, service: str, *argv: str, timeout: float = PATIENCE) -> str:
        """``docker compose run --rm SERVICE ARGV`` (the CLI, or the tools); its stdout."""
        command = [*self.stack.docker_compose_command(), "run", "--rm", "-T", service, *argv]
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

    def state(self) -> dict[str, Any]:
        """The stack's own record, read in its run volume (the host has no copy)."""
        return json.loads(self.run("tools", "cat", f"{compose.RUN_VOLUME}/state.json"))

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


@pytest.fixture(scope="module")
def plain(engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plain]:
    """The file brought up as a user would, with its own project and free ports (the variables
    a user may set in an env file); down with its volumes even if a test fails."""
    project = f"nzrpo-plain-{uuid.uuid4().hex[:6]}"
    ports = free_ports()
    env_file = tmp_path_factory.mktemp("plain") / "stack.env"
    lines = [f"COMPOSE_PROJECT_NAME={project}"]
    lines += [f"SANDBOX_PORT_{name.upper()}={port}" for name, port in ports.items()]
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


def test_a_crash_drill_from_the_cli_service_loses_nothing_on_the_queue(plain: Plain):
    report_file = f"{compose.RUN_VOLUME}/plain-drill.json"
    argv = ["drill", "--fault", "crash", "--path", "both", "--count", "300", "--rate", "60"]
    plain.run("sandbox", *argv, "--json", report_file)
    report = json.loads(plain.run("tools", "cat", report_file))
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


def test_down_with_volumes_leaves_nothing_of_the_stack(plain: Plain):
    assert plain.listed("volume ls") != []  # the run and data volumes, until now
    plain.stack.stop(down=True)
    assert plain.listed("ps -a") == []
    assert plain.listed("network ls") == []
    assert plain.listed("volume ls") == []
    assert not Path("/sandbox").exists()  # nothing of it was ever on the host
