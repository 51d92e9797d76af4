"""docs/workshop.md, run: every command of the host's script, in its order, on a real stack.

A block followed by ``<!-- until: TEXT -->`` is run once, then its last command again until it
prints TEXT (the script's "until the DLQ shows it"), bounded like every wait in the suite. The
time each step took is printed: the machine's share of the workshop's length."""

from __future__ import annotations

import os
import re
import subprocess
import time
from functools import partial
from pathlib import Path

from sandbox.ops import traffic
from tests.conftest import PATIENCE, wait_for

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "docs" / "workshop.md"
BLOCK = re.compile(r"```console\n(.*?)```\n(?:<!-- until: (.*?) -->\n)?", re.S)


def steps(text: str) -> list[tuple[list[str], str | None]]:
    """Each console block's commands (its ``$ `` lines) and its until-text, if any."""
    return [
        ([line[2:] for line in body.splitlines() if line.startswith("$ ")], until or None)
        for body, until in BLOCK.findall(text)
    ]


def test_the_script_is_read_as_the_host_reads_it():
    found = steps(SCRIPT.read_text())
    commands = [command for block, _ in found for command in block]
    assert commands[0] == "make up" and "make demo" in commands
    assert [until for _, until in found if until] == ["DLQ: 1 message(s)", "DLQ: 0 message(s)"]
    assert SCRIPT.read_text().count("```console") == len(found)  # no block the parser missed


def test_every_command_of_the_workshop_runs_in_order(live, unknown_poison_customer):
    env = os.environ | {"SANDBOX_RUN_DIR": live.run_dir, "COLUMNS": "120"}

    def run(command: str) -> str:
        done = subprocess.run(
            command,
            shell=True,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        assert done.returncode == 0, (
            f"`{command}` failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
        return done.stdout

    def prints(command: str, text: str) -> str | None:
        printed = run(command)
        return printed if text in printed else None

    printed: dict[str, str] = {}
    took: list[str] = []
    try:
        for commands, until in steps(SCRIPT.read_text()):
            started = time.monotonic()
            for command in commands:
                printed[command] = run(command)
            if until and until not in printed[commands[-1]]:
                what = f"`{commands[-1]}` printing {until!r}"
                printed[commands[-1]] = wait_for(partial(prints, commands[-1], until), what)
            took.append(f"{time.monotonic() - started:6.1f} s  {'; '.join(commands)}")
    finally:
        traffic.stop(live)
        print("\n".join(took))
    demo = printed["make demo"]
    assert "guidance's check" in demo and "every stored row a counted request" in demo
    assert "NO" not in demo.split("every stored row a counted request", 1)[1].splitlines()[0]
    live.refresh()
    assert live.writer.name == "n1", "the script ends where it began: n1 the writer"
