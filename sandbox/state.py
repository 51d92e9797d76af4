"""The one record of a running stack: ports, pids, endpoints, roles.

`make up` writes it to ``<run dir>/state.json``; the CLI, the dashboard, the tests and the
notebooks all read it, so none of them keeps a second idea of where things run. The run dir is
``.run/`` in the project (git-ignored) unless ``SANDBOX_RUN_DIR`` points elsewhere, which is how
a test stack runs beside a workshop stack.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sandbox.queue import QueueSettings

PROJECT_DIR = Path(__file__).resolve().parent.parent
Role = Literal["writer", "reader"]
Replication = Literal["sync", "async"]


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
class RunnerSettings:
    """The SQS event source mapping of the consumer function."""

    batch_size: int = 10
    batching_window_seconds: float = 0.0
    concurrency: int = 2
    function_timeout_seconds: float = 5.0
    wait_time_seconds: int = 2


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
    # Where the servers run (`sandbox.runtime`); state files from before it are native.
    runtime: Literal["native", "compose"] = "native"

    # -- where things are -------------------------------------------------------------------
    @property
    def writer(self) -> Node:
        return next(node for node in self.nodes.values() if node.role == "writer")

    @property
    def readers(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.role == "reader"]

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['aws']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def issuer(self) -> str:
        """Where tokens come from, like a Cognito user pool's issuer URL."""
        return f"{self.api_url}/local-user-pool"

    @property
    def proxy_dsn(self) -> str:
        return (
            f"postgresql://{self.db_user}:{self.db_password}@127.0.0.1:{self.ports['proxy']}"
            f"/{self.db_name}"
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
            "DB_PROXY_HOST": "127.0.0.1",
            "DB_PROXY_PORT": str(self.ports["proxy"]),
            "DB_SSLMODE": "disable",
        }

    # -- persistence ------------------------------------------------------------------------
    def save(self) -> None:
        """Write the state atomically (a reader never sees half a file), readable by its owner
        alone: it holds the database's and the admin's passwords."""
        target = private_dir(Path(self.run_dir)) / "state.json"
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(fd, 0o600)  # a file left from before keeps its mode otherwise
            out.write(json.dumps(asdict(self), indent=2))
        tmp.replace(target)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackState:
        data = dict(data)
        data["nodes"] = {name: Node(**node) for name, node in data["nodes"].items()}
        data["queue"] = QueueSettings(**data["queue"])
        data["runner"] = RunnerSettings(**data["runner"])
        return cls(**data)


class NotRunning(RuntimeError):
    """No stack has been started in this run dir."""


def load(directory: Path | None = None) -> StackState:
    source = (directory or run_dir()) / "state.json"
    try:
        return StackState.from_dict(json.loads(source.read_text()))
    except FileNotFoundError:
        raise NotRunning(f"no stack in {source.parent}: run `make up` first") from None
