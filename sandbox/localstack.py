"""The AWS stand-in: LocalStack on the host (SQS, Secrets Manager, CloudWatch), no Docker.

It runs from its own virtual environment (``.venv-localstack``, Python >= 3.13, pinned in
``requirements/localstack.txt``) and keeps every file inside the run dir.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

from sandbox import process
from sandbox.state import PROJECT_DIR, StackState

SERVICES = ("sqs", "secretsmanager", "cloudwatch")
PYTHON = PROJECT_DIR / ".venv-localstack" / "bin" / "python"


@dataclass
class LocalStack:
    name: str = "aws"

    def start(self, state: StackState) -> None:
        if not PYTHON.exists():
            raise FileNotFoundError(
                "LocalStack is not installed: run `make up` (or `make install`)"
            )
        home = state.path("localstack")
        port = state.ports["aws"]
        env = {
            "OVERRIDE_IN_DOCKER": "0",  # this machine may carry /.dockerenv
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "GATEWAY_SERVER": "hypercorn",  # the default server binds 0.0.0.0
            "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            "DNS_ADDRESS": "0",  # else it binds port 53
            "SQS_ENDPOINT_STRATEGY": "path",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "SERVICES": ",".join(SERVICES),
            "FILESYSTEM_ROOT": str(home / "fs"),
            "CONFIG_DIR": str(home / "config"),
            "TMPDIR": str(home / "tmp"),
        }
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        argv = [str(PYTHON), "-m", "localstack.runtime.main"]
        state.pids[self.name] = process.spawn(argv, log=log_path(state), env=env)

    def wait(self, state: StackState) -> None:
        def ready() -> bool:
            if not process.alive(state.pids.get(self.name)):
                last = log_path(state).read_text().strip().splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"LocalStack exited: {last[0]} (see {log_path(state)})")
            return self.healthy(state)

        process.wait_until(ready, timeout=90, what="LocalStack", fatal=RuntimeError)

    def stop(self, state: StackState) -> None:
        # LocalStack sometimes hangs on SIGTERM: give it a few seconds, then kill.
        process.stop(state.pids.pop(self.name, None), timeout=8)

    def healthy(self, state: StackState) -> bool:
        reply = httpx.get(f"{state.aws_endpoint}/_localstack/health", timeout=2).json()
        return all(reply["services"].get(s) in ("available", "running") for s in SERVICES)


def client(state: StackState, service: str) -> Any:
    """A boto3 client for the stack's emulated AWS."""
    return boto3.client(
        service,
        endpoint_url=state.aws_endpoint,
        region_name=state.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def log_path(state: StackState) -> Path:
    return state.path("logs", "aws.log")
