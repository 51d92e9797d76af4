"""Fixtures of the Compose profile's tests: the real Docker engine, which `make test` installs
and starts when missing (scripts/install-docker). Without one these tests fail and say so: a
profile that never met an engine is not tested."""

from __future__ import annotations

import subprocess

import pytest

INSTALL = "scripts/install-docker (make test runs it) installs and starts one"


def engine_problem() -> str | None:
    """Why the engine cannot run the profile, or None when `docker` and Compose v2 answer."""
    for argv in (["docker", "info"], ["docker", "compose", "version"]):
        try:
            answer = subprocess.run(argv, capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"`{' '.join(argv)}` failed: {error}"
        if answer.returncode != 0:
            return f"`{' '.join(argv)}` failed: {answer.stderr.decode().strip()[-200:]}"
    return None


@pytest.fixture(scope="session")
def engine() -> None:
    """A Docker engine with Compose v2, or the test fails with what to run."""
    problem = engine_problem()
    if problem:
        pytest.fail(f"no Docker engine for the Compose profile: {problem}; {INSTALL}")
