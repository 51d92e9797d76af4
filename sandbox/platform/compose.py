"""The Compose runtime: each stack server in a container of `compose/docker-compose.yml`.

The file runs the stack by itself (``docker compose up -d --wait``: its one-shot ``setup`` writes
the state into the ``run`` volume, ``init`` provisions it); a host CLI's stack is the same ``up``
with its run dir and data root mounted at their own paths, so the state means the same on the
host and inside. A container runs ``python -m sandbox.stack.serve SERVICE`` on the stack's bridge
network (its port published on the host's loopback under the same number; `sandbox.platform.network`
gives the addresses), in a pid namespace of its own below the engine's init. A server is its
container: a crash is the container killed, a hang the container paused, its memory the
container's; nobody signals a pid across the boundary. The managed services (LocalStack, the
proxy, the API, the consumer, the control plane, the dashboard) have a restart policy: a crash of
one is its processes killed from inside its container, so the engine restarts it as after any
crash, while every stop or kill through the Engine API is one on purpose, which it never restarts.

Compose's own work (build, up, run, down) is the Docker CLI driven as a user would
(``docker compose ...``); what Compose has no command for (is a service's container running,
kill, pause, stats, cutting it off the network) is the Engine API through the Docker SDK. Each
stack has its own Compose project (on record in its state), so a test stack never touches a
workshop stack.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sandbox.platform import process
from sandbox.platform.state import PROJECT_DIR, StackState

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

    from sandbox.platform.runtime import Server

COMPOSE_FILE = PROJECT_DIR / "compose" / "docker-compose.yml"
TOOLS_SERVICE = "tools"
CLI_SERVICE = "sandbox"
#: Where the file mounts its named volumes when no host path is set for them.
RUN_VOLUME = "/sandbox/run"
DATA_VOLUME = "/sandbox/data"
#: The image's user for PostgreSQL and PgBouncer (containers start as root; serve drops to it).
SERVICE_USER = "postgres"
NETWORK = "stack"  # the file's network; the engine names it ``<project>_stack``
NO_ENGINE = (
    "Docker engine not reachable: `docker info` failed; the native profile needs none: `make up`"
)
#: What a process exec'd into a managed service's container runs to signal every process there
#: but the init (pid 1, tini, which then exits as its server did): ``kill(-1)`` spares the caller.
SIGNAL_ALL = "import os, sys; os.kill(-1, int(sys.argv[1]))"


@dataclass(frozen=True)
class Run:
    """A service's container as the engine tells it: which one, and how often it restarted it."""

    container: str  # its id: a recreate (``up --force-recreate``) makes a new one
    restarts: int  # the engine's restarts of this container (its restart policy)
    exited: float  # when its last run ended, epoch seconds (0.0: none has)
    started: float = 0.0  # when its current run began, epoch seconds


#: The run of each service this process signalled from inside, before the signal (by project and
#: service), so that `Compose.exited` tells the engine's restart of it from the same run.
_signalled: dict[tuple[str, str], Run] = {}


class EngineUnreachable(RuntimeError):
    """No Docker engine (or no Compose v2) answers; the message says what to do instead."""


def project_name(run_dir: str) -> str:
    """One Compose project per run dir (lowercase, as Compose requires), stable across calls."""
    return "nzrpo-" + hashlib.sha1(run_dir.encode()).hexdigest()[:12]


def host_data_root(run_dir: Path) -> Path:
    """The nodes' data of a host CLI's stack: outside the run dir (open to its owner alone, which
    the image's ``postgres`` is not), one folder per run dir; ``setup`` makes it the image's
    service user's."""
    digest = hashlib.sha1(str(run_dir).encode()).hexdigest()[:12]
    path = Path("/var/tmp/nzrpo-sandbox") / f"compose-{digest}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Compose:
    """The `runtime.Runtime` of the Compose profile, through the ``docker`` CLI on PATH."""

    file: Path = COMPOSE_FILE

    def ready(self, state: StackState, report: Callable[[str], None]) -> None:
        """Fail in one line without an engine; build the image (cached: seconds when unchanged).

        The build needs the state's variables too: Compose substitutes the whole file first.
        """
        for argv in (["docker", "info"], ["docker", "compose", "version"]):
            try:
                ok = process.run(argv, check=False, timeout=30).returncode == 0
            except FileNotFoundError:
                raise EngineUnreachable(
                    "Docker CLI not found; the native profile needs none: `make up`"
                ) from None
            if not ok:
                raise EngineUnreachable(
                    NO_ENGINE if argv[1] == "info" else "`docker compose` (Compose v2) not found"
                )
        if os.geteuid() != 0:  # its containers (root) would own the run dir's files
            raise EngineUnreachable(
                "the Compose profile's host CLI runs as root; as another user run the file alone: "
                "`docker compose -f compose/docker-compose.yml up -d --wait` (compose/README.md)"
            )
        report("building the image (compose/Dockerfile; the first build takes minutes)")
        self.build(state)

    def build(self, state: StackState, *, cache: bool = True) -> None:
        """``docker compose build``; without ``cache`` every layer again (a cold build)."""
        build = [
            "docker",
            "compose",
            "-f",
            str(self.file),
            "build",
            *([] if cache else ["--no-cache"]),
        ]
        process.run(build, env=self.env(state), timeout=3600, what="docker compose build")

    def project(self, state: StackState) -> str:
        """The stack's Compose project: on record in its state (``setup`` writes the name a
        plain ``docker compose up`` was given); one from before that has its run dir's."""
        return state.project or project_name(state.run_dir)

    def compose(self, state: StackState) -> list[str]:
        return ["docker", "compose", "-f", str(self.file), "-p", self.project(state)]

    def env(self, state: StackState) -> dict[str, str]:
        """What the compose file substitutes: the ports each server publishes (on the host's
        loopback, under the same number), and a host CLI's run dir and data root, mounted at
        their own paths (a stack that `docker compose up` started alone has the volumes)."""
        env = {f"SANDBOX_PORT_{name.upper()}": str(port) for name, port in state.ports.items()}
        if state.run_dir != RUN_VOLUME:
            env["SANDBOX_HOST_RUN_DIR"] = state.run_dir
        if state.data_root != DATA_VOLUME:
            env["SANDBOX_HOST_DATA_ROOT"] = state.data_root
        return env

    def launch(self, state: StackState) -> None:
        """The whole stack in the file's start order, back once every service is healthy and
        the one-shots have completed (``up --wait``); a failure names the service."""
        up = [*self.compose(state), "up", "-d", "--wait"]
        try:
            process.run(up, env=self.env(state), timeout=900, what="docker compose up --wait")
        except process.CommandFailed as error:
            raise RuntimeError(
                f"{error}; see the logs in {state.run_dir}/logs and {state.data_root}, or "
                f"`docker compose -p {self.project(state)} logs`"
            ) from None

    def docker(
        self,
        state: StackState,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        what: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the Docker CLI; with ``what``, a failure raises `CommandFailed` naming it."""
        return process.run(
            argv, env={**self.env(state), **(env or {})}, check=what is not None, what=what
        )

    def start(self, state: StackState, server: Server) -> int:
        """``up`` the service alone; returns the pid its server records where it runs.

        ``server`` is not prepared nor its command built here: `sandbox.stack.serve` does both
        inside the container, with the image's paths, from the state file, which must be current."""
        name = server.name
        last = state.pids.pop(name, None)  # `sandbox.stack.serve` records the new one
        state.save()
        up = [*self.compose(state), "up", "-d", "--no-deps", "--force-recreate", name]
        try:
            self.docker(state, up, what=f"docker compose up {name}")
        except process.CommandFailed:
            if last is not None:  # still meant to run: the control plane tries again
                state.pids[name] = last
                state.save()
            raise

        def recorded() -> int:
            state.refresh()
            if name not in state.pids and not self.alive(state, name):
                raise exited_at_once(state, name)
            return state.pids.get(name, 0)

        process.wait_until(
            recorded, timeout=120, interval=0.25, what=f"{name} started", fatal=RuntimeError
        )
        return state.pids[name]

    def container(self, state: StackState, name: str) -> Container | None:
        """Service ``name``'s running (or paused) container, or None when none runs."""
        import docker.errors
        import requests.exceptions

        labels = [
            f"com.docker.compose.project={self.project(state)}",
            f"com.docker.compose.service={name}",
        ]
        try:  # one recreated or removed meanwhile is left out, not an error
            found = engine().containers.list(filters={"label": labels}, ignore_removed=True)
        except (docker.errors.APIError, requests.exceptions.ConnectionError) as error:
            raise EngineUnreachable(f"{NO_ENGINE} ({error})") from None
        return found[0] if found else None

    def alive(self, state: StackState, name: str) -> bool:
        return self.container(state, name) is not None

    def run(self, state: StackState, name: str) -> Run | None:
        """Service ``name``'s container and its restarts so far; None when none runs."""
        container = self.container(state, name)
        if container is None:
            return None
        return Run(
            container.id,
            container.attrs["RestartCount"],
            _epoch(container, "FinishedAt"),
            _epoch(container, "StartedAt"),
        )

    def signal(self, state: StackState, name: str, sig: int) -> None:
        """A container's processes are all below its init: SIGSTOP and SIGCONT freeze and thaw
        it (``pause``). Any other signal, SIGKILL (a crash) above all: a node's container is
        killed (the engine kills a frozen one too) and stays down, as its policy says; a
        managed service's processes get it from inside (from a process exec'd there, after a
        thaw if it was frozen), so the engine sees its server die and restarts it, as after
        any crash. Killed through the Engine API it never would: the engine counts a container
        killed there as stopped on purpose, whatever its policy (engine 20.10, measured)."""
        import docker.errors

        container = self.container(state, name)
        if container is None:
            return
        with contextlib.suppress(docker.errors.APIError):  # it went meanwhile, or was not paused
            if sig == signal.SIGSTOP:
                container.pause()
            elif sig == signal.SIGCONT:
                container.unpause()
            elif restarted(container):
                restarts = container.attrs["RestartCount"]
                _signalled[self.project(state), name] = Run(container.id, restarts, 0.0)
                if container.status == "paused":  # nothing runs in a frozen one to send it
                    container.unpause()
                argv = ["python", "-c", SIGNAL_ALL, str(int(sig))]
                container.exec_run(argv, user="root")
            else:
                container.kill(signal=sig)

    def stop(self, state: StackState, name: str, *, sig: int, timeout: float) -> None:
        """Through the Engine API: a stop on purpose, which no restart policy undoes."""
        import docker.errors
        import requests.exceptions

        container = self.container(state, name)
        if container is None:
            return
        with contextlib.suppress(docker.errors.APIError):
            if container.status == "paused":  # a frozen server cannot act on a signal
                container.kill()
            else:
                container.kill(signal=sig)
            try:
                container.wait(timeout=timeout)
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                container.kill()
                with contextlib.suppress(
                    requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError
                ):
                    container.wait(timeout=5)  # gone before the caller touches its data

    def exited(self, state: StackState, name: str, pid: int, timeout: float) -> bool:
        """``pid`` is the container's own; its processes go with it, so the container is what
        to wait for: until none runs, or, for a managed service signalled from inside, until
        the engine has restarted it (at once: a new run, not the one that was signalled)."""
        before = _signalled.pop((self.project(state), name), None)

        def gone() -> bool:
            now = self.run(state, name)
            return now is None or (
                before is not None
                and (now.container != before.container or now.restarts > before.restarts)
            )

        try:
            process.wait_until(gone, timeout=timeout, what=name)
        except TimeoutError:
            return False
        return True

    def memory_mib(self, state: StackState, name: str) -> float:
        """What ``docker stats`` shows: the container's memory less its page cache."""
        container = self.container(state, name)
        if container is None:
            return 0.0
        stats = container.stats(stream=False, one_shot=True).get("memory_stats", {})
        counts = stats.get("stats", {})
        cache = counts.get("total_inactive_file", counts.get("inactive_file", 0))  # cgroup v1, v2
        return max(stats.get("usage", 0) - cache, 0) / 2**20

    def tool(
        self,
        state: StackState,
        argv: Sequence[str],
        *,
        user: str | None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose run --rm`` the tool as ``user``.

        Environment values (a password) reach it by name only, never on a command line.
        """
        names = [f"--env={key}" for key in env or {}]
        return self.docker(
            state,
            [
                *self.compose(state),
                "run",
                "--rm",
                "--no-deps",
                "-T",
                f"--user={user or 'root'}",  # a name, resolved in the image
                *names,
                TOOLS_SERVICE,
                *argv,
            ],
            env=env,
            what=argv[0],
        )

    def detach(self, state: StackState, argv: Sequence[str], log: Path) -> None:
        """``python ARGV`` in a one-off container of the CLI service, detached and removed when
        it ends, its output appended to ``log``: for a process that must outlive the command
        that starts it (the traffic, started from the CLI service)."""
        shell = 'exec python "$@" >>"$0" 2>&1'  # the log first, then python's arguments
        run = [*self.compose(state), "run", "-d", "--rm", "--no-deps", "--entrypoint", "sh"]
        self.docker(state, [*run, CLI_SERVICE, "-c", shell, str(log), *argv], what="traffic")

    def remove(self, state: StackState, report: Callable[[str], None]) -> None:
        """``docker compose down -v``: the stopped containers, the network and the volumes go.
        A host CLI's data root is the image's users' files: emptied from a container first.
        A failure only warns (nothing runs any more)."""
        if state.data_root != DATA_VOLUME and Path(state.data_root).is_dir():
            wipe = [*self.compose(state), "run", "--rm", "--no-deps", "-T", TOOLS_SERVICE]
            self.docker(state, [*wipe, "find", state.data_root, "-mindepth", "1", "-delete"])
        report("removing the containers and volumes (docker compose down -v)")
        result = self.docker(state, [*self.compose(state), "down", "-v", "--remove-orphans"])
        if result.returncode != 0:
            report(f"docker compose down failed ({result.returncode}); remove them by hand")

    def partition(self, state: StackState, name: str) -> None:
        """Disconnect the service's container from the stack's network (the Engine API's
        ``docker network disconnect``): the server runs on, reaching nobody and reached by
        nobody, through its published port neither. Every restart (``up --force-recreate``)
        gives it a new container on the network, so the control plane's repair heals it."""
        import docker.errors

        container = self.container(state, name)
        if container is None:
            raise RuntimeError(f"{name} has no running container to cut off")
        try:
            network = f"{self.project(state)}_{NETWORK}"
            engine().networks.get(network).disconnect(container)
        except docker.errors.DockerException as error:
            raise RuntimeError(f"cutting {name} off the network failed: {error}") from None


def restarted(container: Container) -> bool:
    """Whether the engine restarts this container when its server dies (a managed service's
    restart policy, compose/docker-compose.yml); a node's is "no"."""
    policy = container.attrs.get("HostConfig", {}).get("RestartPolicy") or {}
    return policy.get("Name", "") not in ("", "no")


def _epoch(container: Container, field: str) -> float:
    """One of the container's times (``StartedAt``, ``FinishedAt``) in epoch seconds; 0.0 for
    the engine's zero time (never)."""
    stamp = container.attrs["State"].get(field, "")
    if not stamp or stamp.startswith("0001-"):
        return 0.0
    head, _, rest = stamp.rstrip("Z").partition(".")  # nanoseconds: Python reads microseconds
    return datetime.fromisoformat(f"{head}.{(rest + '000000')[:6]}+00:00").timestamp()


def exited_at_once(state: StackState, name: str) -> RuntimeError:
    project = Compose().project(state)
    return RuntimeError(
        f"container {name} exited at once: see its log ({state.run_dir}/logs, or "
        f"{state.data_root} for a node or the proxy), or `docker compose -p {project} logs {name}`"
    )


@functools.cache
def engine() -> DockerClient:
    """One Engine API client per process (the SDK is imported here: most processes never ask)."""
    import docker
    import docker.errors

    try:
        return docker.from_env()
    except docker.errors.DockerException as error:
        raise EngineUnreachable(f"{NO_ENGINE} ({error})") from None
