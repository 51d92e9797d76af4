"""Native processes: start detached, check, stop: the lifecycle every native component uses."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class CommandFailed(RuntimeError):
    """A setup command failed; the message carries its last output lines."""


@dataclass(frozen=True)
class Command:
    """A long-running server of the stack: what runs, as whom, with what environment, logging where.

    A value, not a process: the native runtime spawns it from here, a Compose container builds the
    same value inside the image (`sandbox.stack.serve`) and execs it, so both run the same thing.
    """

    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None


def service_user() -> str | None:
    """The unprivileged user that PostgreSQL and PgBouncer run as (both refuse root).

    None means "whoever we are" when we are not root.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "sandbox"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "sandbox"])
    return "sandbox"


def owned_dir(path: Path, user: str | None) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    chown(path, user)
    return path


def chown(path: Path, user: str | None) -> None:
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def data_root(run_dir: Path, user: str | None) -> Path:
    """Where the service user keeps its files: in the run dir if it can reach it, else /var/tmp.

    A clone under /root (mode 700) is not reachable by ``postgres``; the fallback keeps one
    folder per run dir so parallel stacks never share one.
    """
    preferred = run_dir / "services"
    if user is None or run(["test", "-x", str(run_dir)], user=user, check=False).returncode == 0:
        return preferred
    digest = hashlib.sha1(str(run_dir).encode()).hexdigest()[:12]
    return Path("/var/tmp/nzrpo-sandbox") / digest


def run(
    argv: Sequence[str],
    *,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 120,
    what: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short command to completion, as ``user`` if given.

    ``what`` names it in the error (default: the program), for a program that runs another one.
    """
    result = subprocess.run(
        list(argv),
        user=user,
        env={**os.environ, **(env or {})},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        name = what or Path(argv[0]).name
        raise CommandFailed(f"{name} failed ({result.returncode}): {tail}")
    return result


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start a long-running process in its own session, output to ``log``; return its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        chown(log, user)
        child = subprocess.Popen(
            list(argv),
            user=user,
            env={**os.environ, **(env or {})},
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return child.pid


def launch(command: Command) -> int:
    """Start a stack server natively, detached; return its pid."""
    return spawn(command.argv, log=command.log, user=command.user, env=command.env)


def module_command(module: str, run_dir: str, log_name: str) -> Command:
    """``python -m module``, a stack component of ours; it finds the stack in ``run_dir``."""
    return Command(
        argv=[sys.executable, "-m", module],
        log=Path(run_dir, "logs", f"{log_name}.log"),
        env={"SANDBOX_RUN_DIR": run_dir, "PYTHONUNBUFFERED": "1"},
    )


def on_stop() -> threading.Event:
    """An event that SIGTERM or SIGINT sets: a server's loop runs until it is set, and ends
    its step first."""
    asked = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: asked.set())
    return asked


def alive(pid: int | None) -> bool:
    """True if ``pid`` runs. A zombie (killed, not yet reaped) counts as dead."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def signal_group(pid: int, sig: int) -> None:
    """Signal a process and everything it started (it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def signal_tree(pid: int, sig: int, spare: Collection[int] = ()) -> None:
    """Signal a process and every process below it, as if the host they run on died or froze;
    the processes in ``spare`` (the stack's other servers, which this one may have started, as
    the control plane starts nodes) and what is below them are left alone.

    The process group is not enough: each PostgreSQL backend leads a session of its own, so a
    SIGSTOP to the postmaster's group leaves its backends committing, and a SIGKILL leaves them
    running until they notice their postmaster is gone. The root is stopped first and the tree
    listed after, so no child it forks meanwhile escapes the signal.
    """
    if sig in (signal.SIGKILL, signal.SIGSTOP):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGSTOP)
    for member in [pid, *descendants(pid, stop_at=frozenset(spare) - {pid})]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, sig)


def descendants(pid: int, stop_at: frozenset[int] = frozenset()) -> list[int]:
    """Every process below ``pid`` (children, theirs, ...), from /proc, parents first; the
    processes in ``stop_at``, and what is below them, are left out."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # field 4: ppid
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [c for c in children.get(pid, []) if c not in stop_at]
    while todo:
        child = todo.pop(0)
        found.append(child)
        todo.extend(c for c in children.get(child, []) if c not in stop_at)
    return found


def stop(pid: int | None, *, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Ask a process group to stop; kill it if it has not after ``timeout`` seconds."""
    if not alive(pid):
        return
    assert pid is not None
    signal_group(pid, sig)
    if not wait_dead(pid, timeout):
        signal_group(pid, signal.SIGKILL)
        wait_dead(pid, 5.0)


def memory_mib(pid: int | None, others: frozenset[int] = frozenset()) -> float:
    """Proportional memory (PSS) of a process and every process below it, in MiB; ``others``
    (the stack's other servers, which one of them may have started) are not counted in it."""
    if not alive(pid):
        return 0.0
    assert pid is not None
    total_kib = 0
    for member in [pid, *descendants(pid, stop_at=others)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def passes(check: Callable[[], object]) -> bool:
    """A health check's verdict: one that raises (it could not connect) says "down"."""
    try:
        return bool(check())
    except Exception:
        return False


def wait_until(
    check: Callable[[], object],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "service",
    fatal: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> None:
    """Poll ``check()`` until it is truthy; raise TimeoutError naming ``what`` otherwise.

    Exceptions from ``check`` mean "not yet", except those of the ``fatal`` types: they end it.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except fatal:
            raise
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(interval)
