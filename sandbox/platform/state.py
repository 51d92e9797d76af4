"""The one record of a running stack: ports, pids, endpoints, roles.

`make up` writes it to ``<run dir>/state.json``; the CLI, the dashboard, the tests and the
notebooks all read it, so none of them keeps a second idea of where things run. The run dir is
``.run/`` in the project (git-ignored) unless ``SANDBOX_RUN_DIR`` points elsewhere, which is how
a test stack runs beside a workshop stack.

Several processes change it: the control plane (roles and the nodes' pids after a failover), the
CLI, a drill, the dashboard. So a save writes only what *this* copy changed since it was read,
onto whatever the file holds now (a three-way merge, under a lock), and the roles are read from
the file each time they are asked for: a drill that started before an automatic failover still
finds the new writer.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from sandbox.platform import network
from sandbox.spec.choices import Replication, RuntimeName
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings

PROJECT_DIR = Path(__file__).resolve().parents[2]
Role = Literal["writer", "reader"]


def run_dir() -> Path:
    return Path(os.environ.get("SANDBOX_RUN_DIR") or PROJECT_DIR / ".run").resolve()


def private_dir(path: Path) -> Path:
    """``path``, created if need be, open to its owner alone (0700): the run dir holds the
    state file with its passwords, the logs and the user pool's signing key."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


@dataclass
class Node:
    """One PostgreSQL instance of the cluster (an Aurora DB instance)."""

    name: str
    port: int
    role: Role
    data_dir: str


@dataclass
class ControlPlaneSettings:
    """How the Aurora control plane stand-in (`sandbox.standins.control_plane`) watches and
    fails over."""

    #: A writer that has not answered for this long is failed over (or restarted in place).
    detection_seconds: float = 5.0
    #: Added before promotion, so a workshop sees an Aurora-paced failover; 0 in drills and tests.
    pause_seconds: float = 0.0


#: `sandbox up --pace NAME`. AWS: a failover is "typically less than 60 seconds, and often less
#: than 30 seconds"; the aurora preset takes about 30 s from the crash to writes again.
PACES = {
    "fast": ControlPlaneSettings(),
    "aurora": ControlPlaneSettings(detection_seconds=10.0, pause_seconds=20.0),
}


@dataclass
class StackState:
    run_dir: str
    service_user: str
    data_root: str
    ports: dict[str, int]
    nodes: dict[str, Node]
    replication: Replication = "sync"
    queue: QueueSettings = field(default_factory=QueueSettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    pids: dict[str, int] = field(default_factory=dict)
    db_name: str = "orders"
    db_user: str = "app"
    db_password: str = ""
    admin_password: str = ""
    region: str = "us-east-1"
    queue_url: str = ""
    dlq_url: str = ""
    secret_id: str = ""
    client_id: str = ""
    # Where the servers run (`sandbox.platform.runtime`); state files from before it are native.
    runtime: RuntimeName = "native"
    #: The Compose project the stack's containers belong to (`sandbox.platform.compose`); ""
    #: natively.
    project: str = ""
    consumer: str = "sandbox"  # the write functions' profile (`sandbox.spec.profiles`)
    control_plane: ControlPlaneSettings = field(default_factory=ControlPlaneSettings)
    # False until the first writer has data (`sandbox up` initialises it); an older state file's
    # stack has had data, so it loads as True: a writer that has none then has lost it.
    bootstrapped: bool = True

    def __post_init__(self) -> None:
        self._base: dict[str, Any] = {}  # the file as this copy last read or wrote it
        self._seen: tuple[int, int] | None = None  # its inode and mtime then

    # -- where things are -------------------------------------------------------------------
    @property
    def writer(self) -> Node:
        """The writer as the state file says now (the control plane may have failed over)."""
        self.refresh()
        return next(node for node in self.nodes.values() if node.role == "writer")

    @property
    def readers(self) -> list[Node]:
        self.refresh()
        return [node for node in self.nodes.values() if node.role == "reader"]

    def host(self, server: str) -> str:
        """Where this process reaches ``server`` (`sandbox.platform.network`: the same port
        everywhere)."""
        return network.here(self.runtime, server)

    def peer_host(self, server: str) -> str:
        """Where the stack's servers reach ``server``: for their config files and arguments."""
        return network.peer(self.runtime, server)

    @property
    def bind_host(self) -> str:
        """What every server of this stack listens on."""
        return network.bind(self.runtime)

    def url(self, server: str) -> str:
        """Where this process reaches HTTP server ``server``."""
        return f"http://{self.host(server)}:{self.ports[server]}"

    @property
    def aws_endpoint(self) -> str:
        return self.url("aws")

    @property
    def api_url(self) -> str:
        return self.url("api")

    def public_url(self, server: str) -> str:
        """Where a browser or client on the host reaches HTTP server ``server``, whoever asks:
        what to show a user (a container's own address would not open on the host)."""
        return f"http://{network.LOOPBACK}:{self.ports[server]}"

    @property
    def issuer(self) -> str:
        """Where tokens come from, like a Cognito user pool's issuer URL: one public URL (the
        API's address on the host), the same for whoever mints or checks a token."""
        return f"{self.public_url('api')}/local-user-pool"

    @property
    def proxy_dsn(self) -> str:
        return (
            f"postgresql://{self.db_user}:{self.db_password}@{self.host('proxy')}:"
            f"{self.ports['proxy']}/{self.db_name}"
        )

    def path(self, *parts: str) -> Path:
        return Path(self.run_dir, *parts)

    def function_env(self) -> dict[str, str]:
        """What the Lambda functions find in their environment, locally as in AWS."""
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "QUEUE_URL": self.queue_url,
            "DB_SECRET_ID": self.secret_id,
            "DB_PROXY_HOST": self.host("proxy"),
            "DB_PROXY_PORT": str(self.ports["proxy"]),
            "DB_SSLMODE": "disable",
        }

    # -- persistence ------------------------------------------------------------------------
    def save(self) -> None:
        """Write what this copy changed onto the file as it is now, atomically (a reader never
        sees half a file), readable by its owner alone: it holds the database's and the admin's
        passwords."""
        target = private_dir(Path(self.run_dir)) / "state.json"
        with _locked(target):
            theirs = _read(target)
            if theirs is None and self._base:  # removed by `down` since this copy read it
                raise NotRunning(f"the stack in {self.run_dir} was taken down")
            merged = merge(self._base, asdict(self), theirs or {})
            tmp = target.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                os.fchmod(fd, 0o600)  # a file left from before keeps its mode otherwise
                out.write(json.dumps(merged, indent=2))
            tmp.replace(target)
            seen = _stamp(target)
        self._take(merged, base=merged)
        self._seen = seen

    def refresh(self) -> None:
        """Take in what other processes saved since, keeping what this copy changed unsaved.

        Asked for at every look at the roles, so it reads the file only when it has changed
        since this copy last read or wrote it (every save replaces it: a new inode)."""
        try:
            seen = _stamp(Path(self.run_dir, "state.json"))
        except FileNotFoundError:
            return
        if seen == self._seen:
            return
        disk = _read(Path(self.run_dir, "state.json"))
        if disk is not None and disk != self._base:
            self._take(merge(self._base, asdict(self), disk), base=disk)
        self._seen = seen

    def _take(self, data: dict[str, Any], base: dict[str, Any]) -> None:
        fresh = StackState.from_dict(copy.deepcopy(data))  # shares nothing with ``base``
        for item in fields(self):
            setattr(self, item.name, getattr(fresh, item.name))
        self._base = copy.deepcopy(base)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackState:
        raw = copy.deepcopy(data)  # the base to merge against: never shared with the fields
        data = dict(data)
        data["nodes"] = {name: Node(**node) for name, node in data["nodes"].items()}
        data["queue"] = QueueSettings(**data["queue"])
        data["runner"] = RunnerSettings(**data["runner"])
        data["control_plane"] = ControlPlaneSettings(**data.get("control_plane", {}))
        state = cls(**data)
        state._base = raw
        return state


_MISSING = object()


def merge(base: Any, mine: Any, theirs: Any) -> Any:
    """Three-way merge of two changed copies of ``base``: each key takes the side that changed
    it (dicts key by key, so one process's new pid and another's new roles both stay); where
    both changed the same value, ``mine`` (the one saving) wins."""
    if mine == base:
        return theirs
    if theirs == base or not all(isinstance(x, dict) for x in (base, mine, theirs)):
        return mine
    merged = {}
    for key in [*mine, *(k for k in theirs if k not in mine), *(k for k in base if k not in mine)]:
        value = merge(base.get(key, _MISSING), mine.get(key, _MISSING), theirs.get(key, _MISSING))
        if value is not _MISSING:
            merged[key] = value
    return merged


def _stamp(target: Path) -> tuple[int, int]:
    """Which version of the file this is: saves replace it, so its inode changes each time."""
    info = target.stat()
    return info.st_ino, info.st_mtime_ns


def _read(target: Path) -> dict[str, Any] | None:
    try:
        return json.loads(target.read_text())
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """One saver at a time: read, merge and replace are one step."""
    with open(target.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class NotRunning(RuntimeError):
    """No stack has been started in this run dir."""


def load(directory: Path | None = None) -> StackState:
    source = (directory or run_dir()) / "state.json"
    try:
        seen = _stamp(source)  # before the read: a save in between is read at the next refresh
    except FileNotFoundError:
        seen = None
    data = _read(source)
    if data is None:
        raise NotRunning(f"no stack in {source.parent}: run `make up` first")
    state = StackState.from_dict(data)
    state._seen = seen
    return state
