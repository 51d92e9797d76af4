"""The Compose runtime: each stack server in a container of `compose/docker-compose.yml`.

A container runs ``python -m sandbox.serve SERVICE`` on the stack's bridge network (its port
published on the host's loopback under the same number; `sandbox.network` gives the addresses),
in a pid namespace of its own below the engine's init, with the run dir and data root mounted at
the same paths (the code is in the image), so the ports and files in the state mean the same on
the host and inside. A server is its container: a crash is the container killed, a hang the
container paused, its memory the container's; nobody signals a pid across the boundary.

Compose's own work (build, up, run, down) is the Docker CLI driven as a user would
(``docker compose ...``); what Compose has no command for (is a service's container running,
kill, pause, stats, cutting it off the network) is the Engine API through the Docker SDK. Each
run dir gets its own Compose project, so a test stack never touches a workshop stack.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pwd
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sandbox import process
from sandbox.state import PROJECT_DIR, StackState

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

    from sandbox.runtime import Server

COMPOSE_FILE = PROJECT_DIR / "compose" / "docker-compose.yml"
TOOLS_SERVICE = "tools"
ENGINE_SOCKET = "/var/run/docker.sock"  # the file mounts it into the services that need it
NETWORK = "stack"  # the file's network; the engine names it ``<project>_stack``
NO_ENGINE = (
    "Docker engine not reachable: `docker info` failed; the native profile needs none: `make up`"
)


class EngineUnreachable(RuntimeError):
    """No Docker engine (or no Compose v2) answers; the message says what to do instead."""


def project_name(run_dir: str) -> str:
    """One Compose project per run dir (lowercase, as Compose requires), stable across calls."""
    return "nzrpo-" + hashlib.sha1(run_dir.encode()).hexdigest()[:12]


def uid_gid(user: str | None) -> str:
    """``uid:gid`` of ``user``, or of whoever runs this when None (as the native runtime does)."""
    if user:
        entry = pwd.getpwnam(user)
        return f"{entry.pw_uid}:{entry.pw_gid}"
    return f"{os.getuid()}:{os.getgid()}"


def engine_gid() -> str:
    """The group of the engine's socket (``docker``, or root's): the services that control the
    others are given it, as the invoking user has it."""
    try:
        return str(os.stat(ENGINE_SOCKET).st_gid)
    except OSError:  # no local socket: whatever `docker` reaches, the containers cannot
        return "0"


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

    def compose(self, state: StackState) -> list[str]:
        return ["docker", "compose", "-f", str(self.file), "-p", project_name(state.run_dir)]

    def env(self, state: StackState) -> dict[str, str]:
        """What the compose file substitutes: the mounts, the user the containers run as and
        the ports they publish (each server's, on the host's loopback under the same number)."""
        return {
            "SANDBOX_RUN_DIR": state.run_dir,
            "SANDBOX_DATA_ROOT": state.data_root,
            # Servers start as the invoking user and `sandbox.serve` drops to the service user,
            # as a native start does: the service user may not read a project under /root.
            "SANDBOX_UID_GID": uid_gid(None),
            "SANDBOX_ENGINE_GID": engine_gid(),
            **{f"SANDBOX_PORT_{name.upper()}": str(port) for name, port in state.ports.items()},
        }

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
        # ``server`` is not prepared nor its command built here: `sandbox.serve` does both inside
        # the container, with the image's paths, from the state file, which must be current.
        name = server.name
        state.save()
        up = [*self.compose(state), "up", "-d", "--no-deps", "--force-recreate", name]
        self.docker(state, up, what=f"docker compose up {name}")
        container = self.container(state, name)
        pid = int(container.attrs["State"]["Pid"] or 0) if container else 0
        if not pid:
            raise RuntimeError(
                f"container {name} exited at once: see its log ({state.run_dir}/logs, or "
                f"{state.data_root} for a node or the proxy), or "
                f"`docker compose -p {project_name(state.run_dir)} logs {name}`"
            )
        return pid

    def container(self, state: StackState, name: str) -> Container | None:
        """Service ``name``'s running (or paused) container, or None when none runs."""
        import docker.errors
        import requests.exceptions

        labels = [
            f"com.docker.compose.project={project_name(state.run_dir)}",
            f"com.docker.compose.service={name}",
        ]
        try:  # one recreated or removed meanwhile is left out, not an error
            found = engine().containers.list(filters={"label": labels}, ignore_removed=True)
        except (docker.errors.APIError, requests.exceptions.ConnectionError) as error:
            raise EngineUnreachable(f"{NO_ENGINE} ({error})") from None
        return found[0] if found else None

    def alive(self, state: StackState, name: str) -> bool:
        return self.container(state, name) is not None

    def signal(self, state: StackState, name: str, sig: int) -> None:
        """A container's processes are all below its init: SIGKILL kills the container (the
        engine kills a frozen one too), SIGSTOP and SIGCONT freeze and thaw it (``pause``)."""
        import docker.errors

        container = self.container(state, name)
        if container is None:
            return
        with contextlib.suppress(docker.errors.APIError):  # it went meanwhile, or was not paused
            if sig == signal.SIGSTOP:
                container.pause()
            elif sig == signal.SIGCONT:
                container.unpause()
            else:
                container.kill(signal=sig)

    def stop(self, state: StackState, name: str, *, sig: int, timeout: float) -> None:
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
        to wait for."""
        try:
            process.wait_until(lambda: not self.alive(state, name), timeout=timeout, what=name)
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
                f"--user={uid_gid(user)}",
                *names,
                TOOLS_SERVICE,
                *argv,
            ],
            env=env,
            what=argv[0],
        )

    def remove(self, state: StackState, report: Callable[[str], None]) -> None:
        """``docker compose down``: the stopped containers go; a failure only warns (none run)."""
        report("removing the containers (docker compose down)")
        result = self.docker(state, [*self.compose(state), "down", "--remove-orphans"])
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
            network = f"{project_name(state.run_dir)}_{NETWORK}"
            engine().networks.get(network).disconnect(container)
        except docker.errors.DockerException as error:
            raise RuntimeError(f"cutting {name} off the network failed: {error}") from None


@functools.cache
def engine() -> DockerClient:
    """One Engine API client per process (the SDK is imported here: most processes never ask)."""
    import docker
    import docker.errors

    try:
        return docker.from_env()
    except docker.errors.DockerException as error:
        raise EngineUnreachable(f"{NO_ENGINE} ({error})") from None
