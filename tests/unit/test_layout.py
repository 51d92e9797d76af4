"""The layout's import rules (ARCHITECTURE.md; import-linter's contracts in pyproject.toml) hold
on the code, and fail when one is broken: each break below is one a change could bring in."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sandbox", "dashboard", "bench", "aws")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_code_keeps_every_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contracts"),
    [
        # a stand-in reaching up into what a workshop does to it
        ("sandbox/standins/rds_proxy.py", "from sandbox.ops import failover", {"layers below"}),
        # the spec depending on the local runtime: the CDK app, which reads it, would too
        ("sandbox/spec/queue.py", "from sandbox.platform import state", {"layers below", "CDK"}),
        # a Lambda function that would not deploy alone
        ("sandbox/functions/orders.py", "from sandbox.spec import queue", {"Lambda functions"}),
        # the CDK app depending on the local stack
        ("aws/stacks/queue.py", "from sandbox.standins import sqs", {"CDK app"}),
        # the dashboard calling the CLI instead of what the CLI calls
        ("dashboard/actions.py", "from sandbox import cli", {"never through it"}),
    ],
)
def test_a_broken_rule_fails_the_check(tmp_path: Path, module: str, line: str, contracts: set[str]):
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    source = tmp_path / module
    source.write_text(source.read_text() + f"\n{line}  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode != 0, result.stdout
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    named = {part for part in contracts for row in broken if part in row}
    assert len(broken) == len(contracts) and named == contracts, result.stdout
