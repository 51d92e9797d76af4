"""Where the stack's servers run: native processes (the default) or Docker Compose containers.

A component says *what* runs (a `process.Command`); the runtime says *where*. Both runtimes hand
back a host pid, so everything after a start (health, status, memory, crash with SIGKILL, hang
with SIGSTOP, stop) is the same code on either. The choice is recorded in the state
(``state.runtime``), so every later command uses the runtime the stack was started with.
"""

from __future__ import annotations

import glob
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

from sandbox import process
from sandbox.compose import Compose
from sandbox.state import StackState

Name = Literal["native", "compose"]
NAMES: tuple[Name, ...] = ("native", "compose")
Report = Callable[[str], None]


class Runtime(Protocol):
    def prepare(self, state: StackState, report: Report) -> None:
        """Before a new stack starts (``state`` not saved yet): check that it can run at all,
        and build what it needs."""

    def start(
        self, state: StackState, name: str, command: Callable[[StackState], process.Command]
    ) -> int:
        """Start component ``name`` detached; return its host pid."""

    def tool(
        self,
        state: StackState,
        argv: Sequence[str],
        *,
        user: str | None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool (``argv[0]`` its bare name, e.g. initdb) to completion."""

    def remove(self, state: StackState, report: Report) -> None:
        """After every component has stopped: remove what the runtime itself left behind."""

    def partition(self, state: StackState, name: str) -> None:
        """Cut server ``name`` off from every other server and the host while it runs; it is
        whole again once restarted. Raises `NoNetwork` where servers share one loopback."""


class NoNetwork(RuntimeError):
    """The runtime has no network between the servers to cut."""


class Native:
    """Processes on this host: PostgreSQL and PgBouncer from Debian's packages, Python's venvs."""

    def prepare(self, state: StackState, report: Report) -> None:
        return None

    def start(
        self, state: StackState, name: str, command: Callable[[StackState], process.Command]
    ) -> int:
        return process.launch(command(state))

    def tool(
        self,
        state: StackState,
        argv: Sequence[str],
        *,
        user: str | None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return process.run([pg(argv[0]), *argv[1:]], user=user, env=env)

    def remove(self, state: StackState, report: Report) -> None:
        return None

    def partition(self, state: StackState, name: str) -> None:
        raise NoNetwork(
            f"cannot cut {name} off: natively every server shares the host's loopback; "
            "a partition needs the Compose profile's network (make up PROFILE=compose)"
        )


def named(name: str) -> Runtime:
    if name == "native":
        return Native()
    if name == "compose":
        return Compose()
    raise ValueError(f"runtime must be one of {', '.join(NAMES)}, not {name!r}")


def of(state: StackState) -> Runtime:
    """The runtime this stack was started with."""
    return named(state.runtime)


def bin_dir() -> Path:
    """PostgreSQL's binaries where this code runs: the host's, or the image's in a container."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise FileNotFoundError("PostgreSQL server not found: apt-get install postgresql")
    return Path(found[-1]).parent


def pg(tool: str) -> str:
    return str(bin_dir() / tool)
