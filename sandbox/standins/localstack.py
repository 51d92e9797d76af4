"""The AWS stand-in: LocalStack run from Python, not its image (SQS, Secrets Manager, CloudWatch).

It runs from its own virtual environment (``.venv-localstack``, Python >= 3.13, pinned in
``requirements/localstack.txt``; ``SANDBOX_LOCALSTACK_PYTHON`` names another, as the Compose
image does) and keeps every file inside the run dir, but for its index of the AWS APIs, built
once per environment (`service_catalog`). An init hook of ours (`sandbox.standins.localstack_init`)
stops two things it otherwise does without end.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from sandbox.platform import network, process, runtime
from sandbox.platform.lifecycle import Component
from sandbox.platform.state import PROJECT_DIR, StackState
from sandbox.spec.alarms import METRICS_INTERVAL_SECONDS

SERVICES = ("sqs", "secretsmanager", "cloudwatch")
CATALOG = "service-catalog-*.dill"
#: Run inside LocalStack at its start: what it would otherwise keep doing without end.
INIT_HOOK = Path(__file__).with_name("localstack_init.py")


def python() -> Path:
    """LocalStack's interpreter where this runs: the project's venv, or the image's."""
    default = PROJECT_DIR / ".venv-localstack" / "bin" / "python"
    return Path(os.environ.get("SANDBOX_LOCALSTACK_PYTHON") or default)


@dataclass
class LocalStack(Component):
    """It keeps everything in memory and is provisioned once it answers (`sandbox.stack`)."""

    name: str = "aws"
    title = "LocalStack"
    start_timeout = 90.0
    fatal = (RuntimeError,)  # it exited: its log's last line says why
    wait_on_start = False  # seconds to answer: the nodes start meanwhile

    def prepare(self, state: StackState) -> None:
        state.path("localstack", "tmp").mkdir(parents=True, exist_ok=True)
        # Where LocalStack looks for files its image ships prebuilt ("static libs").
        static = state.path("localstack", "fs", "usr", "lib", "localstack")
        static.mkdir(parents=True, exist_ok=True)
        for built in service_catalog():
            shutil.copyfile(built, static / built.name)
        hooks = state.path("localstack", "fs", "etc", "localstack", "init", "start.d")
        hooks.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(INIT_HOOK, hooks / "sandbox.py")

    def command(self, state: StackState) -> process.Command:
        interpreter = python()
        if not interpreter.exists():
            raise FileNotFoundError(
                "LocalStack is not installed: run `make up` (or `make install`)"
            )
        home = state.path("localstack")
        port = state.ports["aws"]
        env = {
            "OVERRIDE_IN_DOCKER": "0",  # this machine may carry /.dockerenv
            "GATEWAY_LISTEN": f"{state.bind_host}:{port}",
            "GATEWAY_SERVER": "hypercorn",  # the default server binds 0.0.0.0
            # the host in the URLs it hands out (queue URLs): the one the host reaches it at
            "LOCALSTACK_HOST": f"{network.LOOPBACK}:{port}",
            "DNS_ADDRESS": "0",  # else it binds port 53
            "SQS_ENDPOINT_STRATEGY": "path",
            # SQS's metrics to CloudWatch every few seconds, not every minute: alarms at
            # workshop pace (sandbox/spec/alarms.py)
            "SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL": str(METRICS_INTERVAL_SECONDS),
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "SERVICES": ",".join(SERVICES),
            "FILESYSTEM_ROOT": str(home / "fs"),
            "CONFIG_DIR": str(home / "config"),
            "TMPDIR": str(home / "tmp"),
        }
        argv = [str(interpreter), "-m", "localstack.runtime.main"]
        return process.Command(argv=argv, log=log_path(state), env=env)

    def ready(self, state: StackState, since: float) -> bool:
        if not runtime.alive(state, self.name):
            last = log_path(state).read_text().strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"LocalStack exited: {last[0]} (see {log_path(state)})")
        return self.healthy(state)

    def stop_timeout(self, state: StackState) -> float:
        return 8.0  # it sometimes hangs on SIGTERM: a few seconds, then it is killed

    def healthy(self, state: StackState) -> bool:
        import httpx  # here: the consumer runner imports this module, and needs no HTTP client

        reply = httpx.get(f"{state.aws_endpoint}/_localstack/health", timeout=2).json()
        return all(reply["services"].get(s) in ("available", "running") for s in SERVICES)


def service_catalog() -> list[Path]:
    """LocalStack's index of the AWS APIs (which service a request is for), built once per
    LocalStack environment and kept beside it (``share/localstack`` in its venv).

    LocalStack's image ships this file prebuilt. Without it LocalStack builds the index at its
    first request by loading every AWS service's API description: seconds of CPU, and about
    340 MiB it keeps for good (measured: 485 MiB idle without the file, 144 MiB with it). The
    build runs in a process of its own that exits. The file is named after LocalStack's and
    botocore's versions, so an upgraded environment builds its own. If the build fails,
    LocalStack still builds the index itself, as before.
    """
    shared = python().parents[1] / "share" / "localstack"
    if not python().exists():
        return []  # not installed: `command` says so
    if not (shared / catalog_name()).exists():
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            _build_catalog(shared)
    return sorted(shared.glob(CATALOG))


def catalog_name() -> str:
    """The file LocalStack looks for (``localstack.aws.spec._get_catalog_filename``), from the
    versions installed in its environment; a name no file has if they cannot be told."""
    versions = {}
    for package in ("localstack_core", "botocore"):
        found = python().parents[1].glob(f"lib/python3*/site-packages/{package}-*.dist-info")
        versions[package] = next(found, Path("?-?")).name.removesuffix(".dist-info")
    localstack, botocore = (versions[p].split("-")[1].replace(".", "_") for p in versions)
    return CATALOG.replace("*", f"{localstack}-{botocore}")


def _build_catalog(shared: Path) -> None:
    shared.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=shared) as root:
        static = Path(root, "usr", "lib", "localstack")
        static.mkdir(parents=True)
        subprocess.run(
            [str(python()), "-m", "localstack.aws.spec"],
            env=os.environ | {"OVERRIDE_IN_DOCKER": "0", "FILESYSTEM_ROOT": root},
            capture_output=True,
            timeout=300,
            check=False,
        )
        for built in static.glob(CATALOG):
            os.replace(built, shared / built.name)  # whole or not at all, for a stack beside


def client(state: StackState, service: str) -> Any:
    """A boto3 client for the stack's emulated AWS: one per service and endpoint in a process,
    shared (boto3's clients are thread-safe; making one takes tens of milliseconds, and the
    dashboard and `sandbox status` ask for several at every look)."""
    return _client(service, state.aws_endpoint, state.region)


@functools.cache
def _client(service: str, endpoint: str, region: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def log_path(state: StackState) -> Path:
    return state.path("logs", "aws.log")
