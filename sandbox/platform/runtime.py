"""Where the stack's servers run: native processes (the default) or Docker Compose containers.

A component says *what* runs (a `process.Command`); the runtime says *where*, and is the only
code that controls a running server: whether it runs, a signal to it and all below it (a crash
is SIGKILL, a hang SIGSTOP), a stop, its memory. Natively that is a host pid and /proc; on
Compose a container, through the Docker Engine API, so no other code signals or watches a server
by its pid.
The pid each start returns is on record in the state (``state.pids``: which servers the sandbox
started, for status); the choice of runtime is too (``state.runtime``), so every later command
uses the runtime the stack was started with.
"""

from __future__ import annotations

import glob
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from sandbox.platform import process
from sandbox.platform.compose import Compose
from sandbox.platform.state import StackState
from sandbox.spec.choices import RUNTIMES

Report = Callable[[str], None]


class Server(Protocol):
    """What a runtime starts: a stack component (`sandbox.platform.lifecycle.Component`)."""

    name: str

    def prepare(self, state: StackState) -> None:
        """Make what the server needs, where it is about to run (a node's data, a config)."""

    def command(self, state: StackState) -> process.Command:
        """What runs."""


class Runtime(Protocol):
    def ready(self, state: StackState, report: Report) -> None:
        """Before a new stack starts (``state`` not saved yet): check that it can run at all,
        and build what it needs."""

    def start(self, state: StackState, server: Server) -> int:
        """Prepare and start ``server`` detached, where it runs; return its host pid."""

    def alive(self, state: StackState, name: str) -> bool:
        """Whether server ``name`` runs (a frozen one does; a killed one does not)."""

    def signal(self, state: StackState, name: str, sig: int) -> None:
        """``sig`` to server ``name`` and every process below it, the other servers spared: as
        if its host died (SIGKILL), froze (SIGSTOP) or came back (SIGCONT). (A container's init
        passes any other signal to the server alone.)"""

    def stop(self, state: StackState, name: str, *, sig: int, timeout: float) -> None:
        """Ask server ``name`` to stop with ``sig``; kill it if it has not after ``timeout``."""

    def exited(self, state: StackState, name: str, pid: int, timeout: float) -> bool:
        """Wait (bounded) until server ``name``, whose own files say it runs as ``pid`` (its pid
        where it runs: PostgreSQL's postmaster.pid), is gone; True once it is."""

    def memory_mib(self, state: StackState, name: str) -> float:
        """What server ``name`` and everything below it hold in memory, in MiB."""

    def tool(
        self,
        state: StackState,
        argv: Sequence[str],
        *,
        user: str | None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a tool on the nodes' data (``argv[0]`` its bare name: pg_controldata, rm) to
        completion, where the data is."""

    def remove(self, state: StackState, report: Report) -> None:
        """After every component has stopped: remove what the runtime itself left behind."""

    def partition(self, state: StackState, name: str) -> None:
        """Cut server ``name`` off from every other server and the host while it runs; it is
        whole again once restarted. Raises `NoNetwork` where servers share one loopback."""


class NoNetwork(RuntimeError):
    """The runtime has no network between the servers to cut."""


class Native:
    """Processes on this host: PostgreSQL and PgBouncer from Debian's packages, Python's venvs."""

    def ready(self, state: StackState, report: Report) -> None:
        return None

    def start(self, state: StackState, server: Server) -> int:
        server.prepare(state)
        return process.launch(server.command(state))

    def alive(self, state: StackState, name: str) -> bool:
        return process.alive(state.pids.get(name))

    def signal(self, state: StackState, name: str, sig: int) -> None:
        pid = state.pids.get(name)
        if pid:
            process.signal_tree(pid, sig, spare=_others(state, name))

    def stop(self, state: StackState, name: str, *, sig: int, timeout: float) -> None:
        process.stop(state.pids.get(name), sig=sig, timeout=timeout)

    def exited(self, state: StackState, name: str, pid: int, timeout: float) -> bool:
        return process.wait_dead(pid, timeout)

    def memory_mib(self, state: StackState, name: str) -> float:
        return process.memory_mib(state.pids.get(name), frozenset(_others(state, name)))

    def tool(
        self,
        state: StackState,
        argv: Sequence[str],
        *,
        user: str | None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        program = bin_dir() / argv[0]  # a PostgreSQL tool, or a system one (rm)
        return process.run(
            [str(program) if program.exists() else argv[0], *argv[1:]], user=user, env=env
        )

    def remove(self, state: StackState, report: Report) -> None:
        return None

    def partition(self, state: StackState, name: str) -> None:
        raise NoNetwork(
            f"cannot cut {name} off: natively every server shares the host's loopback; "
            "a partition needs the Compose profile's network (make up PROFILE=compose)"
        )


def _others(state: StackState, name: str) -> list[int]:
    """The other servers' pids: the control plane starts nodes, so they are below it natively."""
    return [pid for other, pid in state.pids.items() if other != name]


def stop(state: StackState, name: str, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop component ``name`` as its runtime does and forget its pid; the caller saves."""
    if name in state.pids:
        of(state).stop(state, name, sig=sig, timeout=timeout)
        state.pids.pop(name, None)


def kill(state: StackState, name: str, sig: int = signal.SIGKILL) -> None:
    """Crash component ``name``: ``sig`` to all of it, a wait (bounded) until it is gone, its
    pid forgotten; the caller saves."""
    where = of(state)
    if name in state.pids:
        where.signal(state, name, sig)
        where.exited(state, name, state.pids[name], timeout=10)
        state.pids.pop(name, None)


def alive(state: StackState, name: str) -> bool:
    """Whether component ``name`` runs, wherever it runs."""
    return of(state).alive(state, name)


class ExitedEarly(RuntimeError):
    """A server exited while it was being started; the message says where its log is."""


def running(state: StackState, name: str, log: Path) -> bool:
    """True while server ``name`` runs; `ExitedEarly` once it has exited (for a wait that
    should end there rather than at its bound)."""
    if not alive(state, name):
        raise ExitedEarly(f"{name} exited while starting: see {log}")
    return True


def named(name: str) -> Runtime:
    if name == "native":
        return Native()
    if name == "compose":
        return Compose()
    raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {name!r}")


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
