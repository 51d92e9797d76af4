"""Checkov's CloudFormation checks on the synthesized template: none fails without a reason written
beside the resource (`aws.checkov`, and the FIS bucket's in `aws.stacks.fis`).

Checkov runs from its own environment (``.venv-checkov``, made by ``make install``, pinned in
``requirements/checkov.txt``), so its many dependencies never touch the project's; ``CHECKOV``
names another checkov executable.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aws import checkov

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))


@pytest.fixture(scope="module")
def scan(synth) -> dict[str, Any]:
    if not CHECKOV.is_file():
        pytest.fail(f"checkov is not installed at {CHECKOV}: `make install` makes .venv-checkov")
    template = synth.outdir / f"{synth.stack.stack_name}.template.json"
    run = subprocess.run(
        [
            str(CHECKOV),
            *("--file", str(template)),
            *("--framework", "cloudformation"),
            *("--output", "json"),
            "--skip-download",  # no Bridgecrew platform: offline, and the same checks each run
            "--soft-fail",  # the exit code would say only that something failed; the test says what
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["check_type"] == "cloudformation"
    return report


def test_checkov_read_the_whole_template(scan, synth) -> None:
    summary = scan["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] == len(synth.resources)
    assert summary["passed"] > 0


def test_no_check_fails_without_a_written_reason(scan) -> None:
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in scan["results"]["failed_checks"]
    ]
    assert failed == []


def test_every_skip_has_a_reason(scan) -> None:
    skipped = scan["results"]["skipped_checks"]
    assert skipped
    for check in skipped:
        assert check["check_result"]["suppress_comment"].strip(), check["check_id"]


def test_each_accepted_skip_lands_on_the_resources_it_names(scan, synth) -> None:
    skipped = {
        (c["check_id"], c["resource"].rsplit(".", 1)[-1]) for c in scan["results"]["skipped_checks"]
    }
    for accepted in checkov.SKIPS:
        assert accepted.reason.strip(), accepted.check
        for construct in accepted.where(synth.stack):
            assert (accepted.check, synth.logical_id(construct)) in skipped, accepted.check


def test_skips_are_scoped_to_resources_not_the_stack(synth) -> None:
    for accepted in checkov.SKIPS:
        assert synth.stack not in accepted.where(synth.stack), accepted.check
