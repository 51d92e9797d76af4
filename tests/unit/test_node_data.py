"""A node's first data, made where it is about to run (`PostgresNode.prepare`): which of
initialise, clone or nothing, and the one case refused; and a start that ends early."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.platform import runtime
from sandbox.platform.state import Node, StackState, load
from sandbox.standins.aurora import database
from sandbox.standins.aurora.database import PostgresNode


def make_state(tmp_path: Path, *, bootstrapped: bool) -> StackState:
    nodes = {
        name: Node(name, port, role, str(tmp_path / name))
        for name, port, role in (("n1", 1, "writer"), ("n2", 2, "reader"))
    }
    return StackState(
        run_dir=str(tmp_path),
        service_user="",
        data_root=str(tmp_path),
        ports={"n1": 1, "n2": 2},
        nodes=nodes,
        bootstrapped=bootstrapped,
    )


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """What prepare asked for, instead of running initdb or pg_basebackup."""
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(database, "init_writer", lambda _s, name: asked.append(("init", name)))
    monkeypatch.setattr(database, "clone", lambda _s, name: asked.append(("clone", name)))
    monkeypatch.setattr(database, "rewind", lambda _s, name: asked.append(("rewind", name)))
    monkeypatch.setattr(database, "follow", lambda _s, name: asked.append(("follow", name)))
    waited = lambda _s, name: asked.append(("wait for the writer", name))  # noqa: E731
    monkeypatch.setattr(database, "wait_for_writer", waited)
    return asked


def with_data(state: StackState, name: str, *, standby: bool = False) -> None:
    Path(state.nodes[name].data_dir).mkdir()
    Path(state.nodes[name].data_dir, "PG_VERSION").write_text("17\n")
    if standby:
        Path(state.nodes[name].data_dir, "standby.signal").touch()


def test_the_first_writer_is_initialised_and_a_reader_cloned(tmp_path, made):
    state = make_state(tmp_path, bootstrapped=False)
    state.save()
    PostgresNode("n1").prepare(state)
    assert load(tmp_path).bootstrapped  # saved at once: from here on, no data means lost data
    PostgresNode("n2").prepare(state)
    assert made == [("init", "n1"), ("wait for the writer", "n2"), ("clone", "n2")]


def test_a_writer_with_data_starts_on_it_and_a_reader_follows_the_writer(tmp_path, made):
    state = make_state(tmp_path, bootstrapped=True)
    with_data(state, "n1")
    with_data(state, "n2", standby=True)
    PostgresNode("n1").prepare(state)
    PostgresNode("n2").prepare(state)
    assert made == [("follow", "n2")]  # the writer may have changed since it last ran


def test_a_reader_that_was_the_writer_rewinds_itself_before_it_follows(tmp_path, made):
    """After a failover the state says reader, its data says primary (no standby.signal):
    started as it is, it would be a second writer."""
    state = make_state(tmp_path, bootstrapped=True)
    state.nodes["n1"].role, state.nodes["n2"].role = "reader", "writer"
    with_data(state, "n1")
    PostgresNode("n1").prepare(state)
    assert made == [("wait for the writer", "n1"), ("rewind", "n1"), ("follow", "n1")]


def test_a_writer_that_lost_its_data_is_not_started_empty(tmp_path, made):
    state = make_state(tmp_path, bootstrapped=True)
    with pytest.raises(RuntimeError, match=r"has lost its data .* fail over to the reader"):
        PostgresNode("n1").prepare(state)
    PostgresNode("n2").prepare(state)  # a reader without data clones, as a rejoin's fallback does
    assert made == [("wait for the writer", "n2"), ("clone", "n2")]


def test_an_old_state_file_counts_as_bootstrapped(tmp_path):
    state = make_state(tmp_path, bootstrapped=False)
    state.save()
    raw = Path(tmp_path, "state.json")
    data = json.loads(raw.read_text())
    del data["bootstrapped"]
    raw.write_text(json.dumps(data))
    assert load(tmp_path).bootstrapped


def test_a_server_that_exits_while_starting_ends_the_wait_saying_where_to_look(
    tmp_path, monkeypatch
):
    state = make_state(tmp_path, bootstrapped=False)
    monkeypatch.setattr(runtime, "alive", lambda _s, _name: True)
    assert runtime.running(state, "n1", tmp_path / "n1.log")
    monkeypatch.setattr(runtime, "alive", lambda _s, _name: False)
    with pytest.raises(runtime.ExitedEarly, match=r"n1 exited while starting: see .*n1\.log"):
        runtime.running(state, "n1", tmp_path / "n1.log")
