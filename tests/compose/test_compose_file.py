"""compose/docker-compose.yml and compose/Dockerfile, read as data: one service per component and
its one-shots, the start order declared, one bridge network, each server's port published on
loopback under its own number, own pids, the managed services restarted by the engine and the
nodes never, named volumes, every variable provided."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from sandbox import stack
from sandbox.platform import compose
from sandbox.platform.state import Node, StackState
from sandbox.stack import serve
from sandbox.standins import control_plane

FILE = compose.COMPOSE_FILE
DOCKERFILE = FILE.with_name("Dockerfile")
SERVERS = [item.name for item in stack.components()]


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(FILE.read_text())["services"]


ONE_SHOTS = ["setup", "init"]
ON_DEMAND = {"sandbox": ["cli"], "tools": ["tools"]}  # `docker compose run` only


def test_every_component_has_a_service_of_its_name_that_serves_it(services):
    assert set(services) == {*SERVERS, *ONE_SHOTS, *ON_DEMAND}
    for name in [*SERVERS, *ONE_SHOTS]:
        assert services[name]["command"] == ["python", "-m", "sandbox.stack.serve", name]
        assert "profiles" not in services[name]


def test_the_cli_and_the_tools_are_never_started_by_up(services):
    assert {name: services[name]["profiles"] for name in ON_DEMAND} == ON_DEMAND
    assert services["sandbox"]["entrypoint"] == ["python", "-m", "sandbox.cli"]
    assert "command" not in services["tools"]  # `run tools ARGV` runs ARGV


def after(spec: dict[str, Any]) -> dict[str, str]:
    return {name: need["condition"] for name, need in spec.get("depends_on", {}).items()}


def test_the_file_declares_the_start_order_itself(services):
    """`docker compose up --wait` alone starts the stack as `make up` does: the state first,
    the nodes together (after a failover n2 is the writer: no fixed order between them),
    provisioning once the servers answer, the functions and the control plane after it."""
    healthy, done = "service_healthy", "service_completed_successfully"
    order = {name: after(spec) for name, spec in services.items()}
    assert order == {
        "setup": {},
        "aws": {"setup": done},
        "n1": {"setup": done},
        "n2": {"setup": done},  # whichever node is the reader waits for the writer itself
        "proxy": {"setup": done},
        "init": {"aws": healthy, "n1": healthy, "n2": healthy, "proxy": healthy},
        "api": {"init": done},
        "consumer": {"init": done},
        "control-plane": {"init": done},
        "dashboard": {"init": done},
        "sandbox": {},
        "tools": {},
    }


def test_the_files_order_is_the_stacks_start_order(services):
    """`stack.START_ORDER` (the native `up`'s) in the file's terms: what starts before
    provisioning waits for setup alone, ``init`` (provisioning) for each of them to answer, and
    what starts after for ``init``."""
    steps = [step if isinstance(step, str) else step.name for step, _ in stack.START_ORDER]
    cut = steps.index(stack.PROVISION)
    first, then = steps[:cut], steps[cut + 1 :]
    assert after(services["init"]) == dict.fromkeys(first, "service_healthy")
    done = "service_completed_successfully"
    assert {name: after(services[name]) for name in first} == {n: {"setup": done} for n in first}
    assert {name: after(services[name]) for name in then} == {n: {"init": done} for n in then}


@pytest.mark.parametrize(
    "key, value",
    [
        ("networks", ["stack"]),  # the others reach a server by its service name
        ("pid", None),  # a pid namespace of its own: it is controlled as a container
        ("init", True),  # forwards a stop's signal to the server (as pid 1 it ignores SIGTERM)
        ("user", None),  # root, dropping to the image's postgres where a server needs it
        ("group_add", None),
        # a gone container's name fails in 1 s (a promotion waits for the reader's reconnect)
        ("dns_opt", ["timeout:1", "attempts:1"]),
    ],
)
def test_every_service_is_on_the_stacks_network_and_has_its_own_pids(services, key, value):
    assert {name: spec.get(key) for name, spec in services.items()} == dict.fromkeys(
        services, value
    )


#: What AWS keeps running for you: the control plane's managed services (natively it restarts
#: them; the keeper is native only) and the control plane itself (natively its keeper's job).
MANAGED = {*control_plane.SERVICES} - {"keeper"} | {"control-plane"}


def test_the_engine_restarts_the_managed_services_and_never_a_node(services):
    """A managed service whose server died comes back by the engine's restart policy, one
    stopped through the engine's API (on purpose) does not: `unless-stopped`. A node's crash
    stays a crash until the control plane acts, a one-shot runs once, the CLI and the tools
    are `run` only: "no"."""
    assert {"aws", "proxy", "api", "consumer", "control-plane", "dashboard"} == MANAGED
    policies = {name: spec["restart"] for name, spec in services.items()}
    assert policies == {name: "unless-stopped" if name in MANAGED else "no" for name in services}
    assert {policies[name] for name in ("n1", "n2")} == {"no"}


def test_no_service_uses_the_hosts_network_and_the_network_is_a_bridge(services):
    assert [name for name, spec in services.items() if "network_mode" in spec] == []
    assert yaml.safe_load(FILE.read_text())["networks"] == {"stack": {}}  # Compose's bridge


def test_the_project_has_a_name_of_its_own_that_setup_records():
    """Not the folder's ("compose"); `-p` or COMPOSE_PROJECT_NAME still name another."""
    assert yaml.safe_load(FILE.read_text())["name"] == "nzrpo-sandbox"


def port(name: str) -> str:
    return f"${{SANDBOX_PORT_{name.upper()}:-{stack.DEFAULT_PORTS[name]}}}"


def test_each_server_publishes_its_own_port_on_loopback_only_under_the_same_number(services):
    """The state's port is right on the host and in every container; nothing binds 0.0.0.0
    on the host. Unset, a port is the native stack's."""
    published = {name: spec.get("ports") for name, spec in services.items()}
    expected = {name: None for name in services}
    for name in stack.DEFAULT_PORTS:
        expected[name] = [f"127.0.0.1:{port(name)}:{port(name)}"]
    assert published == expected
    assert not any("expose" in spec for spec in services.values())


def test_every_long_running_server_but_the_consumer_has_a_cheap_healthcheck_of_its_own(services):
    checks = {name: spec.get("healthcheck") for name, spec in services.items()}
    unchecked = [name for name, check in checks.items() if check is None]
    assert unchecked == ["setup", "init", "consumer", "sandbox", "tools"]
    for name, check in checks.items():
        if check is None:
            continue
        test = check["test"]
        assert test[0] == "CMD" and test[1] in ("pg_isready", "python"), (name, test)
        assert not any("sandbox." in part for part in test), "importing the sandbox costs a core"
        if name in stack.DEFAULT_PORTS:  # it probes its own port, in its own container
            assert any(port(name) in part for part in test), (name, test)
        assert check["retries"] >= 3 and check["start_period"], name


RUN_AT = f"${{SANDBOX_HOST_RUN_DIR:-{compose.RUN_VOLUME}}}"
DATA_AT = f"${{SANDBOX_HOST_DATA_ROOT:-{compose.DATA_VOLUME}}}"
RUN = f"${{SANDBOX_HOST_RUN_DIR:-run}}:{RUN_AT}"
DATA = f"${{SANDBOX_HOST_DATA_ROOT:-data}}:{DATA_AT}"


def test_the_state_and_data_are_named_volumes_unless_a_host_cli_names_its_paths(services):
    """Nothing of the host is mounted unasked (no /etc/passwd, no checkout): the code is in
    the image, the state and the data in the `run` and `data` volumes."""
    assert yaml.safe_load(FILE.read_text())["volumes"] == {"run": {}, "data": {}}
    for name, spec in services.items():
        volumes = [v for v in spec["volumes"] if v != "/var/run/docker.sock:/var/run/docker.sock"]
        assert volumes == [RUN, DATA], name
        assert "PYTHONPATH" not in spec["environment"], name  # the image sets it
        assert spec["environment"]["SANDBOX_RUN_DIR"] == RUN_AT
        assert spec["environment"]["SANDBOX_DATA_ROOT"] == DATA_AT
        # the mount's variables are no container's: its own `docker compose` keeps the volumes
        assert not any(key.startswith("SANDBOX_HOST_") for key in spec["environment"]), name


def test_only_the_services_that_control_the_others_have_the_engines_socket(services):
    """They control the others' containers (the repair, the dashboard's buttons, the CLI); no
    server may command the engine."""
    with_socket = [
        name
        for name, spec in services.items()
        if "/var/run/docker.sock:/var/run/docker.sock" in spec["volumes"]
    ]
    assert with_socket == ["control-plane", "dashboard", "sandbox"]
    assert "docker-cli docker-compose" in DOCKERFILE.read_text()


def test_one_image_built_once(services):
    assert {spec["image"] for spec in services.values()} == {"nzrpo-sandbox:local"}
    built = {name: spec["build"] for name, spec in services.items() if "build" in spec}
    assert built == {
        "setup": {"context": "..", "dockerfile": "compose/Dockerfile", "network": "host"}
    }
    assert (FILE.parent / built["setup"]["context"] / built["setup"]["dockerfile"]).exists()


def test_every_variable_the_file_uses_is_one_the_runtime_sets_or_compose_gives(tmp_path):
    used = set(re.findall(r"\$\{(\w+)", FILE.read_text()))
    state = StackState(
        run_dir=str(tmp_path),
        service_user="postgres",
        data_root=str(tmp_path / "services"),
        ports=dict(stack.DEFAULT_PORTS),
        nodes={"n1": Node("n1", 1, "writer", "")},
    )
    knobs = set(serve.QUEUE_VARIABLES)  # a plain file's; a host CLI's stack has its queue
    assert used == {*compose.Compose().env(state), "COMPOSE_PROJECT_NAME", *knobs}


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
