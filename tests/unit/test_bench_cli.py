"""`make bench`'s CLI start section: each command timed in turns as a new process, its medians
set against `python -c pass`'s (no timing asserted: only what is counted and how it is set)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import cli


def test_the_medians_are_set_against_the_baseline_s():
    timings = {
        cli.BASELINE: {"wall": [0.05, 0.04, 0.06], "cpu": [0.02, 0.03, 0.02]},
        "sandbox --help": {"wall": [0.2, 0.3, 0.1], "cpu": [0.1, 0.12, 0.08]},
    }
    shown = {figure.name: figure for figure in cli.figures(timings)}
    assert shown["python -c pass: wall"].baseline and shown["python -c pass: wall"].value == 0.05
    wall, cpu = shown["sandbox --help: wall"], shown["sandbox --help: CPU"]
    assert wall.value == 0.2 and wall.versus == {cli.BASELINE: pytest.approx(4.0)}
    assert cpu.value == 0.1 and cpu.versus == {cli.BASELINE: pytest.approx(5.0)}
    assert "0.3 s" in wall.note  # the goal beside the figure


def test_each_command_runs_as_often_as_asked_and_a_failure_says_why():
    quick = {"a": [sys.executable, "-c", "pass"], "b": [sys.executable, "-c", "pass"]}
    timings = cli.measure(quick, 2)
    assert {name: [len(t["wall"]), len(t["cpu"])] for name, t in timings.items()} == {
        "a": [2, 2],
        "b": [2, 2],
    }
    with pytest.raises(RuntimeError, match="exited 1: no such thing"):
        cli.once([sys.executable, "-c", "import sys; sys.exit('no such thing')"])


def test_it_times_the_sandbox_a_host_types():
    """The console script installed beside this interpreter (.venv/bin/sandbox), as README's
    commands run it."""
    assert Path(cli.SANDBOX).is_file() and Path(cli.SANDBOX).name == "sandbox"
    assert cli.COMMANDS["sandbox status --help"] == [cli.SANDBOX, "status", "--help"]
