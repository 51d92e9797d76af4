"""The runtime layer without an engine: the docker command lines the Compose runtime builds, what
it asks of the Engine API's SDK (a fake client), the no-engine message, old state files, the
native runtime, and `sandbox.stack.serve`'s exec."""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from sandbox.platform import compose, process, runtime
from sandbox.platform.state import PROJECT_DIR, Node, StackState, load
from sandbox.stack import DEFAULT_PORTS
from tests.conftest import PATIENCE, wait_for

SANDBOX = Path(sys.executable).with_name("sandbox")


def make_state(run_dir: Path, runtime_name: str = "compose") -> StackState:
    return StackState(
        run_dir=str(run_dir),
        service_user="postgres",
        data_root=str(run_dir / "services"),
        ports={"n1": 1, "n2": 2, "proxy": 3, "aws": 4, "api": 5, "dashboard": 6},
        nodes={"n1": Node("n1", 1, "writer", str(run_dir / "services" / "n1"))},
        runtime=runtime_name,  # type: ignore[arg-type]
    )


class FakeDocker:
    """Records what `process.run` is asked to run (the Docker CLI); answers with success."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.records: int | None = None  # the pid a started server records, as serve does

    def __call__(self, argv, *, env=None, check=True, what=None, **_):
        argv = list(argv)
        self.calls.append((argv, dict(env or {})))
        if self.records and "up" in argv:  # the container's `sandbox.stack.serve`, in the state
            state = load(Path(env["SANDBOX_HOST_RUN_DIR"]))
            assert argv[-1] not in state.pids, "the last container's pid forgotten first"
            state.pids[argv[-1]] = self.records
            state.save()
        return subprocess.CompletedProcess(argv, 0, "", "")


class FakeContainer:
    """One container as the Engine API's SDK shows it; records what it is asked to do."""

    def __init__(self, pid: int = 4242, status: str = "running") -> None:
        self.attrs = {"State": {"Pid": pid}}
        self.status = status
        self.done: list[tuple[str, object]] = []
        self.exits = True  # whether it exits within a wait

    def kill(self, signal: object = "SIGKILL") -> None:
        self.done.append(("kill", signal))

    def pause(self) -> None:
        self.done.append(("pause", None))

    def unpause(self) -> None:
        self.done.append(("unpause", None))

    def wait(self, timeout: float) -> dict[str, int]:
        self.done.append(("wait", timeout))
        if not self.exits:
            raise requests.exceptions.ReadTimeout("timed out")
        return {"StatusCode": 0}

    def stats(self, stream: bool, one_shot: bool) -> dict[str, object]:
        assert (stream, one_shot) == (False, True)  # one reading, not the two-second sample
        return {"memory_stats": {"usage": 300 * 2**20, "stats": {"inactive_file": 100 * 2**20}}}


class FakeEngine:
    """The SDK's client: one running container per service in ``running``; the filters asked."""

    def __init__(self) -> None:
        self.running: dict[str, FakeContainer] = {"n1": FakeContainer()}
        self.asked: list[dict[str, list[str]]] = []
        self.containers = self

    def list(self, filters: dict[str, list[str]], ignore_removed: bool) -> list[FakeContainer]:
        assert ignore_removed  # one recreated meanwhile is no error
        self.asked.append(filters)
        service = filters["label"][1].split("=", 1)[1]
        return [self.running[service]] if service in self.running else []


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    recorder = FakeDocker()
    monkeypatch.setattr(process, "run", recorder)
    return recorder


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake_engine = FakeEngine()
    monkeypatch.setattr(compose, "engine", lambda: fake_engine)
    return fake_engine


@dataclass
class Untouchable:
    """A server the host must neither prepare nor build the command of: the container does."""

    name: str

    def prepare(self, state: StackState) -> None:
        raise AssertionError("the host must not prepare it")

    def command(self, state: StackState) -> process.Command:
        raise AssertionError("the host must not build the command")


@dataclass
class Given:
    """A server whose command is given; its preparing is counted."""

    name: str
    given: process.Command
    prepared: int = 0

    def prepare(self, state: StackState) -> None:
        self.prepared += 1

    def command(self, state: StackState) -> process.Command:
        assert self.prepared == 1, "prepared first, once"
        return self.given


def test_each_run_dir_gets_its_own_compose_project(tmp_path):
    one, two = compose.project_name(str(tmp_path / "a")), compose.project_name(str(tmp_path / "b"))
    assert one != two
    assert one == compose.project_name(str(tmp_path / "a"))
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", one)  # what Compose accepts as a project name


def test_start_brings_up_one_service_and_returns_the_pid_it_records_where_it_runs(
    tmp_path, fake, engine
):
    state = make_state(tmp_path)
    state.pids["n1"] = 99  # the last container's: gone with it
    fake.records = 7

    pid = compose.Compose().start(state, Untouchable("n1"))

    base = [
        "docker",
        "compose",
        "-f",
        str(compose.COMPOSE_FILE),
        "-p",
        compose.project_name(str(tmp_path)),
    ]
    assert [argv for argv, _ in fake.calls] == [
        [*base, "up", "-d", "--no-deps", "--force-recreate", "n1"]
    ]
    assert pid == 7 == state.pids["n1"]
    env = fake.calls[0][1]
    # a host CLI's stack: its run dir and data root are mounted at their own paths
    assert env["SANDBOX_HOST_RUN_DIR"] == str(tmp_path)
    assert env["SANDBOX_HOST_DATA_ROOT"] == state.data_root
    assert env["SANDBOX_PORT_N1"] == "1"
    assert not any(key in env for key in ("SANDBOX_UID_GID", "SANDBOX_RUN_DIR"))
    assert load(tmp_path).runtime == "compose"  # saved first: the container reads it


def test_a_stack_the_file_started_alone_keeps_its_volumes_and_its_project(tmp_path):
    state = make_state(tmp_path)
    state.run_dir, state.data_root = compose.RUN_VOLUME, compose.DATA_VOLUME
    state.project = "workshop"
    env = compose.Compose().env(state)
    assert env == {f"SANDBOX_PORT_{name.upper()}": str(port) for name, port in state.ports.items()}
    assert compose.Compose().compose(state)[-2:] == ["-p", "workshop"]


def test_a_container_that_exits_at_once_is_an_error_that_says_where_to_look(tmp_path, fake, engine):
    engine.running.clear()  # and no pid recorded
    where = r"exited at once: see its log \(.*/logs, or .* for a node or the proxy\), or `docker"
    with pytest.raises(RuntimeError, match=where):
        compose.Compose().start(make_state(tmp_path), Untouchable("aws"))


@pytest.mark.parametrize(
    "sig, done",
    [
        (signal.SIGKILL, [("kill", signal.SIGKILL)]),  # a crash: the container and all in it
        (signal.SIGSTOP, [("pause", None)]),  # a hang: the cgroup frozen, every process at once
        (signal.SIGCONT, [("unpause", None)]),
    ],
)
def test_a_signal_to_a_server_is_done_to_its_container(tmp_path, engine, sig, done):
    compose.Compose().signal(make_state(tmp_path), "n1", sig)
    assert engine.running["n1"].done == done


def test_a_signal_to_a_server_with_no_container_does_nothing(tmp_path, engine):
    compose.Compose().signal(make_state(tmp_path), "n2", signal.SIGKILL)  # no error
    assert engine.running["n1"].done == []  # nor done to another server's container


class FakeManaged(FakeContainer):
    """A managed service's container: a restart policy, and processes a command exec'd there
    can signal; each signal from inside ends its run, which the engine starts again at once."""

    def __init__(self, status: str = "running") -> None:
        super().__init__(pid=4343, status=status)
        self.id = "c0ffee"
        self.attrs = {
            "State": {"Pid": 4343, "FinishedAt": "0001-01-01T00:00:00Z"},
            "RestartCount": 0,
            "HostConfig": {"RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}},
        }

    def exec_run(self, argv: list[str], user: str) -> None:
        self.done.append(("exec", (argv, user)))
        self.attrs["RestartCount"] += 1  # the engine's restart, as after any crash
        self.attrs["State"]["FinishedAt"] = "2026-12-07T08:21:34.841725809Z"


@pytest.mark.parametrize("status", ["running", "paused"])
def test_a_managed_services_crash_is_its_processes_killed_inside_so_the_engine_restarts_it(
    tmp_path, engine, status
):
    """Killed through the Engine API, a container stays down whatever its restart policy (the
    engine counts it as stopped on purpose): a managed service's crash is a SIGKILL to its every
    process but the init, from inside (a frozen one thawed first), and the wait for its exit
    ends at the engine's restart of it."""
    state, runtime_ = make_state(tmp_path), compose.Compose()
    engine.running["api"] = api = FakeManaged(status)
    assert runtime_.run(state, "api") == compose.Run("c0ffee", 0, 0.0)
    runtime_.signal(state, "api", signal.SIGKILL)
    argv = ["python", "-c", compose.SIGNAL_ALL, str(int(signal.SIGKILL))]
    thawed = [("unpause", None)] if status == "paused" else []
    assert api.done == [*thawed, ("exec", (argv, "root"))]
    assert runtime_.exited(state, "api", pid=7, timeout=1)  # running again: another run
    assert runtime_.run(state, "api") == compose.Run("c0ffee", 1, 1796631694.841725)
    api.done.clear()
    api.status = "running"  # thawed, restarted
    runtime_.signal(state, "api", signal.SIGSTOP)  # a hang is still the container frozen
    runtime_.stop(state, "api", sig=signal.SIGTERM, timeout=5)  # on purpose: through the API
    assert api.done == [("pause", None), ("kill", signal.SIGTERM), ("wait", 5)]


def test_stop_signals_waits_and_kills_only_a_container_that_did_not_exit(tmp_path, engine):
    runtime_, state, container = compose.Compose(), make_state(tmp_path), engine.running["n1"]
    runtime_.stop(state, "n1", sig=signal.SIGINT, timeout=20)
    assert container.done == [("kill", signal.SIGINT), ("wait", 20)]
    container.done.clear()
    container.exits = False
    runtime_.stop(state, "n1", sig=signal.SIGINT, timeout=20)
    assert container.done == [
        ("kill", signal.SIGINT),
        ("wait", 20),
        ("kill", "SIGKILL"),
        ("wait", 5),  # gone before the caller touches its data
    ]


def test_a_paused_container_is_killed_at_once_by_a_stop(tmp_path, engine):
    engine.running["n1"].status = "paused"  # frozen: it cannot act on a signal
    compose.Compose().stop(make_state(tmp_path), "n1", sig=signal.SIGTERM, timeout=10)
    assert engine.running["n1"].done[0] == ("kill", "SIGKILL")


def test_alive_and_memory_are_the_containers(tmp_path, engine):
    state, runtime_ = make_state(tmp_path), compose.Compose()
    assert runtime_.alive(state, "n1")
    assert not runtime_.alive(state, "n2")
    assert runtime_.memory_mib(state, "n1") == 200  # usage less page cache, as docker stats
    assert runtime_.memory_mib(state, "n2") == 0
    assert runtime_.exited(state, "n2", pid=7, timeout=1)  # its own pid means nothing here


def test_a_tool_runs_once_in_the_tools_service_as_the_images_service_user(tmp_path, fake):
    compose.Compose().tool(
        make_state(tmp_path),
        ["pg_controldata", "/data"],
        user="postgres",
        env={"PGPASSWORD": "s3cret"},
    )
    ((argv, env),) = fake.calls
    assert argv[6:] == [
        "run",
        "--rm",
        "--no-deps",
        "-T",
        "--user=postgres",  # a name, resolved in the image (its uid is not the host's)
        "--env=PGPASSWORD",
        "tools",
        "pg_controldata",
        "/data",
    ]
    assert "s3cret" not in " ".join(argv)  # by name only: never on a command line
    assert env["PGPASSWORD"] == "s3cret"


def test_remove_empties_a_host_data_root_from_a_container_then_is_down_with_volumes(tmp_path, fake):
    state = make_state(tmp_path)
    compose.Compose().remove(state, report=lambda _line: None)
    ((argv, _),) = fake.calls  # no data root yet: nothing to empty
    down = ["-p", compose.project_name(str(tmp_path)), "down", "-v", "--remove-orphans"]
    assert argv[4:] == down
    fake.calls.clear()
    Path(state.data_root).mkdir()
    compose.Compose().remove(state, report=lambda _line: None)
    (wipe, _), (argv, _) = fake.calls
    emptied = ["find", state.data_root, "-mindepth", "1", "-delete"]  # the image's users' files
    assert wipe[6:] == ["run", "--rm", "--no-deps", "-T", "tools", *emptied]
    assert argv[4:] == down


def test_ready_checks_the_engine_then_builds_the_image(tmp_path, fake):
    compose.Compose().ready(make_state(tmp_path), report=lambda _line: None)
    assert fake.calls[-1][1]["SANDBOX_HOST_RUN_DIR"] == str(tmp_path)  # the file, substituted
    assert [argv for argv, _ in fake.calls] == [
        ["docker", "info"],
        ["docker", "compose", "version"],
        ["docker", "compose", "-f", str(compose.COMPOSE_FILE), "build"],
    ]


@pytest.fixture
def engine_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``docker`` first on PATH that answers as a client whose engine is down; logs its argv."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "docker-calls"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        'echo "Cannot connect to the Docker daemon. Is the docker daemon running?" >&2\nexit 1\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_without_an_engine_up_says_so_in_one_line_and_starts_nothing(tmp_path, engine_down):
    env = {**os.environ, "SANDBOX_RUN_DIR": str(tmp_path / "stack")}
    result = subprocess.run(
        [str(SANDBOX), "up", "--runtime", "compose", "--auto-ports"],
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == f"error: {compose.NO_ENGINE}\n"
    assert not (tmp_path / "stack" / "state.json").exists()
    assert engine_down.read_text() == "info\n"


def test_a_state_file_from_before_runtimes_loads_as_native(tmp_path):
    state = make_state(tmp_path)
    state.save()
    data = json.loads((tmp_path / "state.json").read_text())
    del data["runtime"]
    (tmp_path / "state.json").write_text(json.dumps(data))
    assert isinstance(runtime.of(load(tmp_path)), runtime.Native)
    with pytest.raises(ValueError, match="native, compose"):
        runtime.named("podman")


def test_the_native_runtime_spawns_the_command_and_runs_tools_from_the_host(tmp_path):
    state = make_state(tmp_path, "native")
    log = tmp_path / "logs" / "x.log"
    command = process.Command(argv=["sh", "-c", "echo $X; exec sleep 30"], log=log, env={"X": "hi"})
    native = runtime.Native()
    pid = state.pids["x"] = native.start(state, Given("x", command))
    try:
        wait_for(lambda: log.exists() and log.read_text() == "hi\n", "its line in its log")
        assert native.alive(state, "x") and native.memory_mib(state, "x") > 0
        native.signal(state, "x", signal.SIGSTOP)
        wait_for(lambda: proc_state(pid) == "T", "the process stopped")
        native.signal(state, "x", signal.SIGCONT)
        wait_for(lambda: proc_state(pid) == "S", "the process running again")
    finally:
        runtime.stop(state, "x", timeout=5)
    assert "x" not in state.pids and not process.alive(pid)
    assert native.exited(state, "x", pid, timeout=1)
    version = runtime.Native().tool(state, ["pg_controldata", "--version"], user=None)
    assert "PostgreSQL" in version.stdout


def proc_state(pid: int) -> str:
    """The state letter /proc shows for ``pid`` (S sleeping, T stopped, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to the service user needs root")
def test_serve_becomes_the_command_as_its_user_logging_to_its_file(tmp_path):
    tmp_path.chmod(0o755)  # the service user writes its log here
    log = tmp_path / "n1.log"
    script = (
        "from pathlib import Path; from sandbox.platform import process; "
        "from sandbox.stack import serve; "
        f"command = process.Command(argv=['sh', '-c', 'echo $X; id -un; pwd; echo oops >&2'], "
        f"log=Path({str(log)!r}), env={{'X': 'from-env'}}, user='postgres'); "
        "serve.to_log(command); print('prepared'); serve.run(command)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)},
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().split() == ["prepared", "from-env", "postgres", "/", "oops"]
    assert log.stat().st_uid == pwd.getpwnam("postgres").pw_uid


def test_serve_refuses_what_is_not_a_component():
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.stack.serve", "nope"],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
        cwd=PROJECT_DIR,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "usage: python -m sandbox.stack.serve setup|init|aws|n1|n2|proxy|"
    )


def serve_setup(run_dir: Path, data: Path) -> subprocess.CompletedProcess[str]:
    """The file's ``setup`` one-shot as its container runs it: the file's variables only."""
    env = {
        **os.environ,
        "SANDBOX_RUN_DIR": str(run_dir),
        "SANDBOX_DATA_ROOT": str(data),
        "SANDBOX_PROJECT": "workshop",
        **{f"SANDBOX_PORT_{name.upper()}": str(port) for name, port in DEFAULT_PORTS.items()},
    }
    return subprocess.run(
        [sys.executable, "-m", "sandbox.stack.serve", "setup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
        cwd=PROJECT_DIR,
    )


def test_setup_writes_a_new_compose_stacks_state_once_and_keeps_it_after(tmp_path):
    run_dir, data = tmp_path / "run", tmp_path / "data"
    first = serve_setup(run_dir, data)
    assert first.returncode == 0, first.stderr
    state = load(run_dir)
    assert (state.runtime, state.project, state.ports) == ("compose", "workshop", DEFAULT_PORTS)
    assert (state.run_dir, state.data_root) == (str(run_dir), str(data))
    assert state.nodes["n1"].role == "writer" and state.nodes["n2"].data_dir == str(data / "n2")
    assert not state.bootstrapped and len(state.db_password) == 32
    assert data.stat().st_uid == pwd.getpwnam("postgres").pw_uid  # the servers make their data
    assert (run_dir / "state.json").stat().st_mode & 0o777 == 0o600
    again = serve_setup(run_dir, data)
    assert again.returncode == 0, again.stderr
    assert "is kept" in again.stdout
    assert load(run_dir).db_password == state.db_password  # a second `up` keeps the stack


@dataclass
class Answering:
    """A managed service whose health the test sets."""

    name: str
    answers: bool = True
    start_timeout: float = 30.0

    def healthy(self, state: StackState) -> bool:
        return self.answers


def test_on_compose_the_control_plane_leaves_a_dead_service_to_the_engine_and_says_it_is_back(
    tmp_path, monkeypatch
):
    """The engine restarts silently: a service down is left out (nothing to restart, no race
    with the engine), and its container seen again restarted (the same one, one restart more)
    is recorded lost at its exit and restarted once it answers; a container the sandbox
    recreated is its own doing, not an event."""
    from sandbox.standins import control_plane
    from sandbox.standins.aurora import events

    state = make_state(tmp_path)
    state.pids = {"api": 7}
    api = Answering("api")
    monkeypatch.setattr(control_plane, "SERVICES", {"api": api})
    runs: dict[str, compose.Run | None] = {"api": compose.Run("c1", 0, 0.0)}
    monkeypatch.setattr(compose.Compose, "run", lambda self, state, name: runs[name])
    monkeypatch.setattr(control_plane, "ASK_EVERY_SECONDS", 0.0)  # asked at every look
    plane = control_plane.ControlPlane(state)
    assert plane.services() == {"api": "ok"}
    runs["api"] = None  # its server died; the engine restarts it
    assert plane.services() == {}
    started = time.time()
    runs["api"], api.answers = compose.Run("c1", 1, 1000.0, started), False  # not serving yet
    assert plane.services() == {}  # starting: as long as a start may take, the engine's
    runs["api"] = compose.Run("c1", 1, 1000.0, started - api.start_timeout)
    assert plane.services() == {"api": "silent"}  # too long: the control plane's to restart
    assert events.read(state) == []
    api.answers = True
    assert plane.services() == {"api": "ok"}
    said = [(e["event"], e["node"], e.get("since", e.get("lost"))) for e in events.read(state)]
    assert said == [("service-lost", "api", 1000.0), ("service-restarted", "api", 1000.0)]
    runs["api"] = compose.Run("c2", 0, 0.0)  # recreated by the sandbox (a repair)
    assert plane.services() == {"api": "ok"}
    assert len(events.read(state)) == 2
