"""The state file holds the database's and the admin's passwords: its owner alone reads it."""

from __future__ import annotations

import stat
from pathlib import Path

from sandbox.state import Node, StackState, load


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
