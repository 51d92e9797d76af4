"""The CLI answers at once (issue 32): building the app and printing any command's --help load
none of the stack's heavy parts (AWS's SDK, the database driver, the HTTP client ...); a command
imports what it needs when it runs. An import check, never a timing: these imports were most of
the second `sandbox --help` took (`make bench`'s cli section times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import typer

from sandbox.cli import app

#: What the commands need to do their work, not to be listed or parsed. (pydantic is not here:
#: typer itself loads it to parse a command's options.)
HEAVY = (
    "boto3",
    "botocore",
    "psycopg",
    "docker",
    "httpx",
    "jwt",
    "yaml",
    "uvicorn",
    "aws_lambda_powertools",
    "sandbox.stack",
    "sandbox.standins.control_plane",
    "sandbox.standins.aurora.database",
)

#: Runs `sandbox ARGV...` through the real entry point for each ARGV given, in one process, then
#: writes the names of every module it loaded.
SCRIPT = """
import contextlib, io, json, sys
from sandbox.cli import main
argvs, out = json.loads(sys.argv[1]), sys.argv[2]
for argv in argvs:
    sys.argv = ["sandbox", *argv]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main()
with open(out, "w") as written:
    json.dump(sorted(sys.modules), written)
"""


def commands(group: typer.core.TyperCommand, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in getattr(group, "commands", {}).items():
        found += commands(command, (*path, name))
    return found


def loaded(tmp_path, argvs: list[list[str]]) -> set[str]:
    """The modules a fresh `sandbox` process has loaded after answering each of ``argvs`` (with
    no stack: a run dir of its own, empty)."""
    out = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(argvs), str(out)],
        env=os.environ | {"SANDBOX_RUN_DIR": str(tmp_path / "run")},
        check=True,
        timeout=120,
    )
    return set(json.loads(out.read_text()))


def test_sandbox_help_loads_none_of_the_heavy_modules(tmp_path):
    modules = loaded(tmp_path, [["--help"]])
    assert [name for name in HEAVY if name in modules] == []


def test_no_command_s_help_loads_them(tmp_path):
    every = [[*path, "--help"] for path in commands(typer.main.get_command(app))]
    assert len(every) > 30  # every command and group, sandbox's own --help among them
    modules = loaded(tmp_path, [[], *every])  # (bare `sandbox` prints its help too)
    assert [name for name in HEAVY if name in modules] == []


def test_the_names_are_the_modules_a_command_loads(tmp_path):
    """Not held out by a misspelling: a command that runs (status, here with no stack to ask)
    loads the stack's parts."""
    modules = loaded(tmp_path, [["status"]])
    assert {"boto3", "botocore", "psycopg", "httpx", "sandbox.stack"} <= modules
