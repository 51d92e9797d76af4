"""The state file: private (it holds the passwords), and shared by processes that change it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sandbox.platform.state import Node, NotRunning, StackState, load


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_file_and_its_run_dir_are_private(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o755)
    (run_dir / "state.json").write_text("{}")
    (run_dir / "state.json").chmod(0o644)  # as an older sandbox left it
    state = StackState(
        run_dir=str(run_dir),
        service_user="",
        data_root=str(tmp_path / "data"),
        ports={"api": 1},
        nodes={"n1": Node("n1", 2, "writer", "d")},
        db_password="secret",
    )
    state.save()
    assert mode(run_dir) == 0o700
    assert mode(run_dir / "state.json") == 0o600
    assert load(run_dir).db_password == "secret"


def two_copies(tmp_path: Path) -> tuple[StackState, StackState]:
    StackState(
        run_dir=str(tmp_path),
        service_user="",
        data_root=str(tmp_path),
        ports={"api": 1},
        nodes={"n1": Node("n1", 2, "writer", "d1"), "n2": Node("n2", 3, "reader", "d2")},
        pids={"n1": 10, "n2": 20, "consumer": 30},
    ).save()
    return load(tmp_path), load(tmp_path)


def test_two_processes_saving_keep_each_others_changes(tmp_path):
    """The control plane fails over while a drill, started before, restarts the consumer."""
    plane, drill = two_copies(tmp_path)
    plane.nodes["n1"].role, plane.nodes["n2"].role = "reader", "writer"
    plane.pids.pop("n1")
    plane.save()
    drill.pids["consumer"] = 31  # its copy still says n1 is the writer
    drill.save()
    now = load(tmp_path)
    assert now.pids == {"n2": 20, "consumer": 31}
    assert {n.name: n.role for n in now.nodes.values()} == {"n1": "reader", "n2": "writer"}


def test_a_copy_asked_for_the_writer_sees_a_failover_saved_by_another(tmp_path):
    plane, drill = two_copies(tmp_path)
    drill.pids["consumer"] = 31  # not saved yet: a refresh keeps it
    plane.nodes["n1"].role, plane.nodes["n2"].role = "reader", "writer"
    plane.save()
    assert drill.writer.name == "n2"
    assert [n.name for n in drill.readers] == ["n1"]
    assert drill.pids["consumer"] == 31


def test_where_both_changed_the_same_value_the_saver_wins(tmp_path):
    first, second = two_copies(tmp_path)
    first.pids["consumer"] = 31
    first.save()
    second.pids["consumer"] = 32
    second.save()
    assert load(tmp_path).pids["consumer"] == 32


def test_a_copy_of_a_stack_taken_down_does_not_write_it_back(tmp_path):
    stale, _ = two_copies(tmp_path)
    (tmp_path / "state.json").unlink()  # `sandbox down`
    stale.pids["consumer"] = 31
    with pytest.raises(NotRunning):
        stale.save()
    assert not (tmp_path / "state.json").exists()
