"""The benchmark's stack lifecycle (`bench.stacks.own_stack`), with the stack itself faked: torn
down whatever happens, logs kept only when something failed, the environment left as found."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from bench import stacks
from sandbox.platform.state import NotRunning


class FakeState:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = str(run_dir)
        self.pids = {"dashboard": 1}
        self.saved = 0

    def save(self) -> None:
        self.saved += 1


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, list]:
    calls: dict[str, list] = {"up": [], "stop": [], "down": []}
    monkeypatch.setattr(stacks.tempfile, "tempdir", str(tmp_path))  # its run dirs made here

    def up(options, report, directory):
        (directory / "logs").mkdir()
        calls["up"].append(directory)
        return FakeState(directory), True

    monkeypatch.setattr(stacks.stack, "up", up)
    monkeypatch.setattr(stacks.stack, "stop", lambda state, name: calls["stop"].append(name))
    monkeypatch.setattr(
        stacks.stack, "down", lambda force, report, directory: calls["down"].append(directory)
    )
    monkeypatch.setenv("SANDBOX_RUN_DIR", "/the/workshop/stack")
    return calls


def test_a_run_that_went_well_leaves_nothing_behind(fake):
    lines: list[str] = []
    with stacks.own_stack(None, "benchmark", lines.append) as state:
        assert os.environ["SANDBOX_RUN_DIR"] == state.run_dir  # the bench's own, meanwhile
    (run_dir,) = fake["up"]
    assert fake["stop"] == ["dashboard"] and fake["down"] == [run_dir]
    assert state.saved == 1 and not run_dir.exists()
    assert os.environ["SANDBOX_RUN_DIR"] == "/the/workshop/stack"
    assert lines == ["stopping the benchmark stack"]


@pytest.mark.parametrize("how", ["raised", "a section said so"])
def test_a_failure_keeps_the_logs_and_still_tears_down(fake, how):
    lines: list[str] = []
    expected = pytest.raises(RuntimeError) if how == "raised" else contextlib.nullcontext()
    with expected, stacks.own_stack(None, "profile x", lines.append, lambda: how != "raised"):
        if how == "raised":
            raise RuntimeError("broken")
    (run_dir,) = fake["up"]
    assert fake["down"] == [run_dir] and (run_dir / "logs").exists()
    assert lines[-1] == f"profile x: logs kept in {run_dir / 'logs'}"
    assert os.environ["SANDBOX_RUN_DIR"] == "/the/workshop/stack"


def test_ctrl_c_in_the_block_tears_down_and_keeps_the_logs(fake):
    with pytest.raises(KeyboardInterrupt), stacks.own_stack(None, "benchmark", print):
        raise KeyboardInterrupt
    (run_dir,) = fake["up"]
    assert fake["down"] == [run_dir] and (run_dir / "logs").exists()
    assert os.environ["SANDBOX_RUN_DIR"] == "/the/workshop/stack"


@pytest.mark.parametrize("broken", ["save", "log", "down"])
def test_a_teardown_step_that_fails_skips_none_of_the_others(fake, monkeypatch, broken):
    """The state not saved (a full disk), the log line not written (its pipe gone), or down
    itself failing: the stack is still taken down, the logs kept, the environment restored."""

    def fail(*args, **kwargs):
        raise OSError(f"{broken} failed")

    if broken == "save":
        monkeypatch.setattr(FakeState, "save", fail)
    if broken == "down":
        monkeypatch.setattr(stacks.stack, "down", fail)
    lines: list[str] = []

    def log(line: str) -> None:
        if broken == "log" and line.startswith("stopping"):
            fail()
        lines.append(line)

    with pytest.raises(OSError, match=f"{broken} failed"), stacks.own_stack(None, "bench", log):
        pass
    (run_dir,) = fake["up"]
    assert fake["down"] == ([] if broken == "down" else [run_dir])
    assert (run_dir / "logs").exists() and lines[-1] == f"bench: logs kept in {run_dir / 'logs'}"
    assert os.environ["SANDBOX_RUN_DIR"] == "/the/workshop/stack"


def test_a_start_that_failed_is_no_error_at_teardown(fake, monkeypatch):
    def up(options, report, directory):
        raise TimeoutError("LocalStack did not start")

    def down(force, report, directory):
        raise NotRunning("no stack")  # the failed start removed what it had made

    monkeypatch.setattr(stacks.stack, "up", up)
    monkeypatch.setattr(stacks.stack, "down", down)
    expected = pytest.raises(TimeoutError, match="LocalStack")  # the real error, not NotRunning
    with expected, stacks.own_stack(None, "benchmark", lambda line: None):
        pass
    assert list(Path(stacks.tempfile.tempdir).iterdir()) == []  # no run dir left: no logs in it
    assert os.environ["SANDBOX_RUN_DIR"] == "/the/workshop/stack"


def test_signals_are_ignored_only_during_the_teardown(fake, monkeypatch):
    both = (signal.SIGINT, signal.SIGTERM)
    seen = []
    monkeypatch.setattr(
        stacks.stack,
        "down",
        lambda force, report, directory: seen.append([signal.getsignal(sig) for sig in both]),
    )
    before = [signal.getsignal(sig) for sig in both]
    with stacks.own_stack(None, "benchmark", lambda line: None):
        assert [signal.getsignal(sig) for sig in both] == before
    assert seen == [[signal.SIG_IGN, signal.SIG_IGN]]
    assert [signal.getsignal(sig) for sig in both] == before
