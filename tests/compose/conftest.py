"""Fixtures of the Compose profile's tests: a stand-in ``docker`` first on PATH (see
`standin_docker.py`: it runs services as host processes, it is not Docker), or the real CLI when
a real engine answers, so the same stack test proves the profile on a machine with Docker."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STANDIN = Path(__file__).with_name("standin_docker.py")


@dataclass
class Docker:
    """The ``docker`` the runtime will call: the stand-in (``home`` set) or the real one."""

    home: Path | None

    @property
    def real(self) -> bool:
        return self.home is None

    def calls(self) -> list[list[str]]:
        """Every argv the stand-in was called with, in order."""
        assert self.home is not None, "the real docker records nothing"
        path = self.home / "calls.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line)["argv"] for line in lines]

    def kill_leftovers(self) -> None:
        """SIGKILL every stand-in "container" still running: a failed test leaves nothing behind."""
        assert self.home is not None
        path = self.home / "containers.json"
        for record in json.loads(path.read_text()).values() if path.exists() else ():
            for send in (os.killpg, os.kill):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    send(record["pid"], signal.SIGKILL)


def install_standin(home: Path, monkeypatch: pytest.MonkeyPatch) -> Docker:
    """Put the stand-in first on PATH as ``docker`` (run by this interpreter: it needs PyYAML)."""
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "docker"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_DOCKER_HOME", str(home))
    return Docker(home)


def real_engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
        plugin = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=20, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return info.returncode == 0 and plugin.returncode == 0


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Docker]:
    """Always the stand-in (for tests of command lines and of the no-engine message)."""
    docker = install_standin(tmp_path / "docker", monkeypatch)
    try:
        yield docker
    finally:
        docker.kill_leftovers()


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Docker]:
    """The real Docker if an engine with Compose v2 answers, else the stand-in."""
    if real_engine_answers():
        yield Docker(None)
        return
    fake = install_standin(tmp_path / "docker", monkeypatch)
    try:
        yield fake
    finally:
        fake.kill_leftovers()
