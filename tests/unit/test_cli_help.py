"""Every command's --help is readable in an 80-column terminal: nothing cut, no line too long."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from sandbox.cli import app


def commands(group: typer.core.TyperCommand, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in getattr(group, "commands", {}).items():  # a group has subcommands
        found += commands(command, (*path, name))
    return found


ALL = commands(typer.main.get_command(app))


def test_the_walk_finds_the_command_groups():
    assert {("up",), ("dlq", "redrive"), ("fault", "hang"), ("traffic", "start")} <= set(ALL)


@pytest.mark.parametrize("path", ALL, ids=lambda path: " ".join(path) or "sandbox")
def test_help_fits_80_columns(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    too_long = [line for line in result.output.splitlines() if len(line) > 80]
    assert too_long == []
    for option in (
        typer.main.get_command(app).commands.get(path[0]).params if len(path) == 1 else []
    ):
        for name in option.opts:
            assert name in result.output  # every option name shown whole
