"""Every command a tool prints runs as printed, in the user's shell, on a fresh clone (issue 31):
`sandbox.platform.hints.command` spells it, and nothing prints a bare `sandbox ...` past it;
every `make` target that runs the CLI says in one line what to do where `make up` never ran."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from sandbox.cli import app
from sandbox.platform import hints

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with a virtualenv whose bin/ holds `sandbox`, as `make up` leaves it."""
    script = tmp_path / "project" / ".venv" / "bin" / "sandbox"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "prefix", str(script.parent.parent))
    hints._spelled.cache_clear()
    yield script
    hints._spelled.cache_clear()


def test_plain_sandbox_where_that_name_finds_this_install(venv, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: str(venv))  # the venv activated
    assert hints.command("status") == "sandbox status"


def test_the_venv_path_from_the_project_folder_when_not_on_path(venv, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.chdir(venv.parents[2])
    assert hints.command("load --count 100") == ".venv/bin/sandbox load --count 100"


def test_the_whole_path_from_anywhere_else(venv, monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/local/bin/sandbox")  # another one
    monkeypatch.chdir(elsewhere)
    assert hints.command("events") == f"{venv} events"


def test_a_path_with_a_space_is_quoted_for_the_shell(tmp_path, monkeypatch):
    script = tmp_path / "my project" / ".venv" / "bin" / "sandbox"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "prefix", str(script.parent.parent))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.chdir(tmp_path)
    hints._spelled.cache_clear()
    try:
        spelled = hints.command("status")
    finally:
        hints._spelled.cache_clear()
    assert spelled == "'my project/.venv/bin/sandbox' status"


def test_plain_sandbox_outside_a_virtualenv_of_the_project(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "prefix", str(tmp_path))  # no bin/sandbox there: an image's install
    hints._spelled.cache_clear()
    try:
        assert hints.command("status") == "sandbox status"
    finally:
        hints._spelled.cache_clear()


def _printed_strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a module, f-strings' literal parts included, but docstrings and
    ``help=`` texts (or a ``..._HELP`` constant's): the CLI's --help names its own commands."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    helps = {
        id(inner)
        for node in ast.walk(tree)
        if (isinstance(node, ast.keyword) and node.arg == "help")
        or (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id.endswith("_HELP") for t in node.targets)
        )
        for inner in ast.walk(node.value)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings | helps
    ]


def test_no_tool_prints_a_sandbox_command_spelled_by_hand():
    """A bare `sandbox X` in a message is "command not found" on a fresh clone's shell. (A
    string that is only "sandbox up" names who holds the cluster lock: not a command to run.)"""
    commands = "|".join(map(re.escape, typer.main.get_command(app).commands))
    spelled = re.compile(rf"(?<![\w./-])sandbox (?:{commands})\b")
    by_hand = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for folder in ("sandbox", "dashboard")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, text in _printed_strings(path)
        if spelled.search(text) and not re.fullmatch(r"sandbox \w+", text)
    ]
    assert by_hand == [], "spell these with sandbox.platform.hints.command, e.g. hint('status')"


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("status", "no stack here: run `make up` first"),
        ("down", "no stack here: nothing to stop (`make up` starts one)"),
        ("dashboard", "no stack here: run `make up` first (it starts the dashboard too)"),
    ],
)
def test_make_targets_before_make_up_say_what_to_do(tmp_path, target, said):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")  # a fresh clone: no .venv
    done = subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == said
    assert "No such file" not in done.stderr and "Error 127" not in done.stderr
    assert done.stdout == ""
