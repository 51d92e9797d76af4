"""README's "Run the workshop", then docs/workshop.md, walked as a first-time host walks them:
every command exactly as printed, in order, on a stack the walk's own `make up` starts, with the
output 80 columns wide, and every hint the tools print along the way run as printed too.

The docs say what the walk checks, in a comment under a console block:

- ``<!-- until: TEXT -->``: the block's last command is run again until it prints TEXT (the
  script's "until the DLQ shows it"), bounded like every wait in the suite;
- ``<!-- prints: TEXT -->``: the step printed TEXT, where ``...`` stands for any text on one line
  and a space for any run of them;
- ``<!-- runs: LABEL -->``: the commands a tool printed in backticks after LABEL (its last
  output that says LABEL, to its end) are run next, exactly as printed: after `make up` its
  "Token" and "Try" commands, after the fix the "fix:" `send --poison` printed.

`make test` itself is the one command of the docs not walked: it is what runs the walk. The walk's
`make up` gets free ports and the test stack's short retry budget from ``UP_ARGS`` in its
environment (a make variable: the command typed is still `make up`), as ``SANDBOX_RUN_DIR``
gives it a run dir of its own. The time each step took is printed: the machine's share of the
workshop's length (README's "Run the workshop" gives the figures, with their conditions)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox.platform.state import load
from sandbox.standins.aurora import database
from tests.conftest import PATIENCE, ROOT, TEST_QUEUE, TEST_RUNNER, typed, wait_for
from tests.integration.test_cli import SANDBOX

WALKED = (ROOT / "README.md", ROOT / "docs" / "workshop.md")
BLOCK = re.compile(r"```console\n(.*?)```\n((?:<!-- \w+: .*? -->\n)*)", re.S)
MARK = re.compile(r"<!-- (\w+): (.*?) -->")
HEADING = re.compile(r"^#+ (.*)$", re.M)
TICKED = re.compile(r"`([^`\n]+)`")
#: The test stack's retry budget and timeouts (tests/conftest.py), so the DLQ step is short.
UP_ARGS = (
    f"--auto-ports --max-receive-count {TEST_QUEUE.max_receive_count} "
    f"--visibility-timeout {TEST_QUEUE.visibility_timeout_seconds:g} "
    f"--function-timeout {TEST_RUNNER.function_timeout_seconds:g}"
)


@dataclass
class Step:
    """A console block: where it is, its commands (its ``$ `` lines), and its marks."""

    where: str  # the document and the heading it is under
    commands: list[str]
    until: str | None = None
    prints: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def steps(path: Path) -> list[Step]:
    text = path.read_text()
    found = []
    for block in BLOCK.finditer(text):
        headings = HEADING.findall(text[: block.start()])
        step = Step(
            f"{path.name}: {headings[-1] if headings else path.name}",
            [line[2:] for line in block[1].splitlines() if line.startswith("$ ")],
        )
        for kind, value in MARK.findall(block[2]):
            if kind == "until":
                step.until = value
            else:
                getattr(step, kind).append(value)  # prints, runs: an unknown kind fails here
        found.append(step)
    return found


def pattern(text: str) -> re.Pattern[str]:
    """TEXT as the docs write it: literal, but ``...`` is any text within one line and a space
    any run of them (a table's column is as wide as its widest cell)."""
    return re.compile(
        ".*?".join(re.sub(r"(?:\\ )+", " +", re.escape(part)) for part in text.split("..."))
    )


def hints(printed: str, label: str) -> list[str]:
    """The commands in backticks after the last LABEL in ``printed``, to its end."""
    return TICKED.findall(printed[printed.rindex(label) :])


def test_the_docs_are_read_as_the_host_reads_them():
    readme, script = (steps(path) for path in WALKED)
    assert readme and readme[0].commands[0] == "make up"  # the walk starts the stack
    assert readme[0].runs == ["Token"]  # what `make up` printed from its token on
    commands = [command for step in script for command in step.commands]
    assert commands[0] == "make up" and "make demo" in commands and commands[-1] == "make down"
    assert [step.until for step in script if step.until] == [
        "DLQ: 1 message(s)",
        "DLQ: 0 message(s)",
    ]
    for path, found in zip(WALKED, (readme, script), strict=True):
        assert path.read_text().count("```console") == len(found)  # no block the parser missed
    assert pattern('202 {"order_id": "...", "message_id": "..."}').fullmatch(
        '202 {"order_id": "order-1", "message_id": "m-1"}'
    )
    assert pattern("client errors │ 0 │").search("│ client errors     │ 0       │ 339    │")
    assert not pattern("client errors │ 0 │").search("│ client errors     │ 12      │ 0      │")


def test_the_workshops_links_into_the_readme_name_its_headings():
    """ "Show the table in the README's section X": X is there (a renamed heading breaks it)."""
    anchors = {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in HEADING.findall((ROOT / "README.md").read_text())
    }
    linked = re.findall(r"\(\.\./README\.md#([\w-]+)\)", WALKED[1].read_text())
    assert linked and set(linked) <= anchors


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The walk's environment: a run dir of its own, free ports, 80 columns; afterwards, its
    traffic and its stack stopped whatever happened (both no-ops after the walk's `make down`)."""
    env = os.environ | {
        "SANDBOX_RUN_DIR": str(tmp_path / "run"),
        "UP_ARGS": UP_ARGS,
        "COLUMNS": "80",
    }
    yield env
    for args in (["traffic", "stop"], ["down", "--force"]):
        subprocess.run(
            [SANDBOX, *args], env=env, capture_output=True, timeout=PATIENCE, check=False
        )


def same_program(command: str) -> str:
    """``command`` with the CLI spelled one way: the hints print whichever of ``sandbox``,
    ``.venv/bin/sandbox`` or its whole path finds this install in the shell, the docs the venv's."""
    words = shlex.split(command)
    if words[0] == "sandbox" or (ROOT / words[0]).resolve() == Path(SANDBOX).resolve():
        words[0] = "sandbox"
    return shlex.join(words)


def test_readme_then_the_workshop_every_command_as_printed(shell):
    ran: list[str] = []
    outputs: list[str] = []  # everything the walk printed, in order

    def run(command: str) -> str:
        done = typed(command, shell)
        ran.append(command)
        printed = done.stdout + done.stderr
        assert done.returncode == 0, f"`{command}` failed ({done.returncode}):\n{printed[-3000:]}"
        return printed

    def prints(command: str, text: str) -> str | None:
        printed = run(command)
        return printed if text in printed else None

    def walk(step: Step) -> str:
        said = [run(command) for command in step.commands]
        if step.until and step.until not in said[-1]:
            what = f"`{step.commands[-1]}` printing {step.until!r}"
            said[-1] = wait_for(lambda: prints(step.commands[-1], step.until), what)
        for label in step.runs:
            source = next(out for out in reversed(outputs + said) if label in out)
            printed = hints(source, label)
            assert printed, f"no command in backticks after {label!r} in:\n{source}"
            said += [run(command) for command in printed]
        outputs.extend(said)
        return "\n".join(said)

    took: list[str] = []
    began = time.monotonic()
    try:
        for step in (step for path in WALKED for step in steps(path)):
            started = time.monotonic()
            if "make down" in step.commands:
                every_acknowledged_order_committed(shell, outputs)  # before the stack goes
            printed = walk(step)
            for text in step.prints:
                assert pattern(text).search(printed), (
                    f"{step.where}: {text!r} not printed by {step.commands}:\n{printed}"
                )
            took.append(
                f"{time.monotonic() - started:6.1f} s  {step.where}: {'; '.join(step.commands)}"
            )
    finally:
        took.append(f"{time.monotonic() - began:6.1f} s  in all")
        print("\n".join(took))
        # Kept for whoever reports the walk's time per step (the dashboard's screenshots beside).
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        (ROOT / "test-artifacts" / "workshop-walk.txt").write_text("\n".join(took) + "\n")
    printed_commands = {c for out in outputs for c in TICKED.findall(out) if CLI.match(c)}
    unwalked = {same_program(c) for c in printed_commands} - {same_program(c) for c in ran}
    assert not unwalked, f"printed as a command to run, never run by the walk: {unwalked}"


CLI = re.compile(r"^(?:make |\S*sandbox )")


def every_acknowledged_order_committed(shell: dict[str, str], outputs: list[str]) -> None:
    """Each order a `send` printed a 202 for (the poison order too, after its fix and the
    redrive) is in the writer's table: "the order commits"."""
    acknowledged = {
        order_id
        for out in outputs
        for order_id in re.findall(r'^202 \{"order_id": "([^"]+)"', out, re.M)
    }
    assert acknowledged, "the walk sent no order with `send`"
    state = load(Path(shell["SANDBOX_RUN_DIR"]))
    with database.connect(state, state.writer.name) as conn:
        rows = conn.execute(
            "SELECT order_id FROM orders WHERE order_id = ANY(%s)", (list(acknowledged),)
        ).fetchall()
    assert {row[0] for row in rows} == acknowledged
