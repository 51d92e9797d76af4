"""Who reaches whom where (`sandbox.platform.network`): loopback natively; on Compose a service name
from inside the stack's network, loopback from the host, and every server binding its container."""

from __future__ import annotations

import pytest

from sandbox import stack
from sandbox.platform import network
from sandbox.platform.state import Node, StackState
from sandbox.standins import rds_proxy, secrets_manager
from sandbox.standins.aurora import database


def make_state(tmp_path, runtime: str) -> StackState:
    return StackState(
        run_dir=str(tmp_path),
        service_user="",
        data_root=str(tmp_path),
        ports=dict(stack.DEFAULT_PORTS),
        nodes={"n1": Node("n1", 15432, "reader", ""), "n2": Node("n2", 15433, "writer", "")},
        runtime=runtime,  # type: ignore[arg-type]
        db_password="pw",
    )


@pytest.fixture
def inside(monkeypatch):
    monkeypatch.setenv(network.IN_CONTAINER, "1")


@pytest.fixture
def outside(monkeypatch):
    monkeypatch.delenv(network.IN_CONTAINER, raising=False)


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_natively_everything_is_loopback_wherever_it_is_asked(tmp_path, request, where):
    request.getfixturevalue(where)
    state = make_state(tmp_path, "native")
    assert {state.host("n2"), state.peer_host("n2"), state.bind_host} == {"127.0.0.1"}
    assert network.clients("native") == "127.0.0.1/32"


def test_on_compose_the_host_reaches_servers_on_loopback_and_they_reach_each_other_by_name(
    tmp_path, outside
):
    state = make_state(tmp_path, "compose")
    assert state.host("proxy") == "127.0.0.1"
    assert state.proxy_dsn == "postgresql://app:pw@127.0.0.1:16432/orders"
    assert state.aws_endpoint == "http://127.0.0.1:14566"
    # what the host writes for the servers names them as they see each other
    assert state.peer_host("n2") == "n2"
    assert secrets_manager.rds_secret(state)["host"] == "proxy"
    assert state.bind_host == "0.0.0.0"
    assert network.clients("compose") == "samenet"


def test_inside_a_container_every_server_is_its_service_name(tmp_path, inside):
    state = make_state(tmp_path, "compose")
    env = state.function_env()
    assert (env["AWS_ENDPOINT_URL"], env["DB_PROXY_HOST"]) == ("http://aws:14566", "proxy")
    assert state.api_url == "http://api:18080"


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_the_issuer_is_one_public_url_whoever_mints_or_checks_a_token(tmp_path, request, where):
    request.getfixturevalue(where)
    assert make_state(tmp_path, "compose").issuer == "http://127.0.0.1:18080/local-user-pool"


@pytest.mark.parametrize(
    "runtime, target, listen, clients",
    [
        ("native", "host=127.0.0.1 port=15433", "127.0.0.1", "127.0.0.1/32"),
        ("compose", "host=n2 port=15433", "0.0.0.0", "samenet"),
    ],
)
def test_config_files_name_the_writer_and_the_bind_address_of_the_runtime(
    tmp_path, outside, runtime, target, listen, clients
):
    state = make_state(tmp_path, runtime)
    state.save()
    rds_proxy.write_config(state)
    config = rds_proxy.config_path(state).read_text()
    assert f"orders = {target} dbname=orders" in config
    assert f"listen_addr = {listen}\n" in config
    assert f"listen_addresses = '{listen}'" in database.settings(state)
    assert f"host all all {clients} scram-sha-256\n" in database.hba(state)
    assert f"host replication replicator {clients} scram-sha-256\n" in database.hba(state)


def test_a_look_at_a_node_resolves_its_name_within_the_answer_window(monkeypatch):
    """A node cut off the Compose network has no name on it: the engine's resolver takes ~20 s
    to say so, so the control plane's look gives up on the lookup at the answer window."""
    import threading

    import psycopg

    assert database.address_quickly("127.0.0.1") == "127.0.0.1"
    released = threading.Event()
    with monkeypatch.context() as patched:  # an address is not looked up: no thread natively
        patched.setattr(database.threading, "Thread", None)
        assert database.address_quickly("127.0.0.1") == "127.0.0.1"

    def hanging(host: str) -> str:
        released.wait(60)
        return "10.0.0.1"

    monkeypatch.setattr(database.socket, "gethostbyname", hanging)
    monkeypatch.setattr(database, "ANSWER_SECONDS", 0.2)
    try:
        with pytest.raises(psycopg.OperationalError, match="no address within"):
            database.address_quickly("n1")
    finally:
        released.set()


def test_a_whole_look_at_a_node_is_bounded_even_when_it_freezes_after_connecting(monkeypatch):
    """A writer frozen between the look's connection and its statements never times a statement
    out (the server keeps that deadline): the look gives up at its own bound, and the caller
    (the control plane) sees a node that does not answer instead of waiting for good."""
    import contextlib
    import threading

    import psycopg

    released = threading.Event()

    @contextlib.contextmanager
    def connected(_state, _name, _dbname):
        yield "a connection"

    def refused(_conn):
        raise psycopg.OperationalError("refused")

    def frozen(_conn):  # a statement sent to a server that was SIGSTOPped meanwhile
        released.wait(60)
        return "late"

    monkeypatch.setattr(database, "connect_quickly", connected)
    monkeypatch.setattr(database, "LOOK_SECONDS", 0.2)
    try:
        assert database.quickly(None, "n1", lambda conn: f"{conn}, answered") == (
            "a connection, answered"
        )
        with pytest.raises(psycopg.OperationalError, match=r"n1 did not answer within 0\.2 s"):
            database.quickly(None, "n1", frozen)
        with pytest.raises(psycopg.OperationalError, match="refused"):  # its own error, as is
            database.quickly(None, "n1", refused)
    finally:
        released.set()
