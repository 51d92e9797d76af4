"""compose/docker-compose.yml and compose/Dockerfile, read as data: one service per component,
one bridge network, each server's port published on loopback under its own number, own pids,
same-path mounts, every variable provided."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from sandbox import compose, stack
from sandbox.state import Node, StackState

FILE = compose.COMPOSE_FILE
DOCKERFILE = FILE.with_name("Dockerfile")
SERVERS = [item.name for item in stack.components()]


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(FILE.read_text())["services"]


def test_every_component_has_a_service_of_its_name_that_serves_it(services):
    assert set(services) == {*SERVERS, "tools"}
    for name in SERVERS:
        assert services[name]["command"] == ["python", "-m", "sandbox.serve", name]
        assert "profiles" not in services[name]


def test_the_tools_service_is_never_started_by_up(services):
    assert services["tools"]["profiles"] == ["tools"]
    assert "command" not in services["tools"]  # `run tools ARGV` runs ARGV


@pytest.mark.parametrize(
    "key, value",
    [
        ("networks", ["stack"]),  # the others reach a server by its service name
        ("pid", None),  # a pid namespace of its own: it is controlled as a container
        ("restart", "no"),  # a crash stays a crash until the sandbox acts
        ("init", True),  # forwards a stop's signal to the server (as pid 1 it ignores SIGTERM)
    ],
)
def test_every_service_is_on_the_stacks_network_has_its_own_pids_and_never_restarts(
    services, key, value
):
    assert {name: spec.get(key) for name, spec in services.items()} == dict.fromkeys(
        services, value
    )


def test_no_service_uses_the_hosts_network_and_the_network_is_a_bridge(services):
    assert [name for name, spec in services.items() if "network_mode" in spec] == []
    assert yaml.safe_load(FILE.read_text())["networks"] == {"stack": {}}  # Compose's bridge


def test_each_server_publishes_its_own_port_on_loopback_only_under_the_same_number(services):
    """The state's port is right on the host and in every container; nothing binds 0.0.0.0
    on the host."""
    published = {name: spec.get("ports") for name, spec in services.items()}
    expected = {name: None for name in services}
    for name in stack.DEFAULT_PORTS:
        port = f"${{SANDBOX_PORT_{name.upper()}:?set by sandbox/compose.py}}"
        expected[name] = [f"127.0.0.1:{port}:{port}"]
    assert published == expected
    assert not any("expose" in spec for spec in services.values())


def test_every_long_running_server_but_the_consumer_has_a_cheap_healthcheck_of_its_own(services):
    checks = {name: spec.get("healthcheck") for name, spec in services.items()}
    assert [name for name, check in checks.items() if check is None] == ["consumer", "tools"]
    for name, check in checks.items():
        if check is None:
            continue
        test = check["test"]
        assert test[0] == "CMD" and test[1] in ("pg_isready", "python"), (name, test)
        assert not any("sandbox." in part for part in test), "importing the sandbox costs a core"
        if name in stack.DEFAULT_PORTS:  # it probes its own port, in its own container
            assert any(f"${{SANDBOX_PORT_{name.upper()}:" in part for part in test), (name, test)
        assert check["retries"] >= 3 and check["start_period"], name


def test_the_run_dir_and_data_root_are_mounted_at_their_host_paths_and_the_code_is_not(services):
    for name, spec in services.items():
        volumes = spec["volumes"]
        for variable in ("SANDBOX_RUN_DIR", "SANDBOX_DATA_ROOT"):
            source = f"${{{variable}:?set by sandbox/compose.py}}"
            assert f"{source}:{source}" in volumes, (name, variable)
        assert {"/etc/passwd:/etc/passwd:ro", "/etc/group:/etc/group:ro"} <= set(volumes), name
        assert not any("PROJECT" in volume for volume in volumes), name  # the image's code runs
        assert "PYTHONPATH" not in spec["environment"], name  # the image sets it
        assert spec["environment"]["SANDBOX_RUN_DIR"].startswith("${SANDBOX_RUN_DIR")


def test_only_the_control_plane_and_the_dashboard_have_the_engines_socket(services):
    """They control the others' containers (the repair, the dashboard's buttons); no server
    may command the engine."""
    with_socket = {
        name: spec.get("group_add")
        for name, spec in services.items()
        if "/var/run/docker.sock:/var/run/docker.sock" in spec["volumes"]
    }
    # the socket's group, so that a non-root user's containers may use it
    group = "${SANDBOX_ENGINE_GID:?set by sandbox/compose.py}"
    assert with_socket == {"control-plane": [group], "dashboard": [group]}
    assert "docker-cli docker-compose" in DOCKERFILE.read_text()


def test_one_image_built_once(services):
    assert {spec["image"] for spec in services.values()} == {"nzrpo-sandbox:local"}
    built = {name: spec["build"] for name, spec in services.items() if "build" in spec}
    assert built == {
        "aws": {"context": "..", "dockerfile": "compose/Dockerfile", "network": "host"}
    }
    assert (FILE.parent / built["aws"]["context"] / built["aws"]["dockerfile"]).exists()


def test_every_variable_the_file_uses_is_one_the_runtime_sets(tmp_path):
    used = set(re.findall(r"\$\{(\w+)", FILE.read_text()))
    state = StackState(
        run_dir=str(tmp_path),
        service_user="",
        data_root=str(tmp_path / "services"),
        ports=dict(stack.DEFAULT_PORTS),
        nodes={"n1": Node("n1", 1, "writer", "")},
    )
    assert used == set(compose.Compose().env(state))


def test_the_image_provides_what_the_containers_call_by_name():
    text = DOCKERFILE.read_text()
    assert text.startswith("#") and "\nFROM debian:trixie-slim\n" in text  # a public base image
    assert "postgresql-17 pgbouncer python3 python3-venv" in text
    path = re.search(r"ENV PATH=(\S+)", text)
    assert path is not None
    assert path.group(1).split(":")[:2] == ["/opt/venv/bin", "/usr/lib/postgresql/17/bin"]
    assert "SANDBOX_LOCALSTACK_PYTHON=/opt/venv-localstack/bin/python" in text
    assert "requirements/localstack.txt" in text
    ignored = FILE.with_name("Dockerfile.dockerignore").read_text().splitlines()
    assert {"*", "!pyproject.toml", "!requirements/localstack.txt"} <= set(ignored)
    # the code, laid out as in the checkout, on the image's PYTHONPATH; no bytecode of the host's
    assert {"!sandbox", "!dashboard", "!compose/docker-compose.yml", "**/__pycache__"} <= set(
        ignored
    )
    for part in ("sandbox", "dashboard", "compose/docker-compose.yml"):
        assert f"COPY {part} /opt/sandbox/{part}\n" in text, part
    assert "PYTHONPATH=/opt/sandbox" in text
