"""How long the CLI takes to answer: `sandbox --help`, and `sandbox status --help` (the app
built, one command's options parsed: what every command pays before its own work; typer 0.29
imports pydantic to parse them), each set against `python -c pass` on the same interpreter, the
floor no Python command goes below.

Each is a new process, as a host's shell starts it, timed from the start to its exit: the wall
time, and its CPU time (user + system, from the kernel's account of the child), which a busy
machine inflates less. The three take turns, run after run, so a change in the machine's load
falls on all alike; the figures are the medians. No stack is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.model import Figure, Section
from bench.stats import ratio
from sandbox.drills.stats import percentile

BASELINE = "python -c pass"
#: The `sandbox` a host types: the console script installed beside this interpreter.
SANDBOX = str(Path(sys.executable).with_name("sandbox"))
COMMANDS = {
    BASELINE: [sys.executable, "-c", "pass"],
    "sandbox --help": [SANDBOX, "--help"],
    "sandbox status --help": [SANDBOX, "status", "--help"],
}
GOAL_SECONDS = 0.3  # issue 32: "answers at once"


def run(runs: int, log: Callable[[str], None]) -> Section:
    section = Section("cli", f"CLI start: median of {runs} runs each, in turns")
    log(f"CLI start: {', '.join(COMMANDS)}, {runs} runs each")
    timings = measure(COMMANDS, runs)
    section.figures = figures(timings)
    section.details = {
        "commands": {name: " ".join(argv) for name, argv in COMMANDS.items()},
        "runs": timings,
    }
    return section


def measure(commands: dict[str, list[str]], runs: int) -> dict[str, dict[str, list[float]]]:
    """Each command ``runs`` times, taking turns (one run of each, then the next round):
    ``{name: {"wall": [s ...], "cpu": [s ...]}}``."""
    timings: dict[str, dict[str, list[float]]] = {
        name: {"wall": [], "cpu": []} for name in commands
    }
    for _ in range(runs):
        for name, argv in commands.items():
            wall, cpu = once(argv)
            timings[name]["wall"].append(wall)
            timings[name]["cpu"].append(cpu)
    return timings


def once(argv: list[str]) -> tuple[float, float]:
    """One run: (wall seconds from the start to the exit, CPU seconds the child used)."""
    started = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as child:
        _, status, usage = os.wait4(child.pid, 0)  # the child's own CPU time, as it exits
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait
        said = child.stderr.read().decode().strip() if child.stderr else ""
    if child.returncode:
        raise RuntimeError(f"{' '.join(argv)} exited {child.returncode}: {said}")
    return wall, usage.ru_utime + usage.ru_stime


def figures(timings: dict[str, dict[str, list[float]]]) -> list[Figure]:
    """Per command its median wall and CPU seconds, each against the baseline's."""
    medians = {
        name: {kind: percentile(values, 50) for kind, values in measured.items()}
        for name, measured in timings.items()
    }
    base = medians.get(BASELINE, {})
    shown = []
    for kind, what in (("wall", "wall"), ("cpu", "CPU")):
        for name, median in medians.items():
            baseline = name == BASELINE
            shown.append(
                Figure(
                    f"{name}: {what}",
                    median[kind],
                    "s",
                    versus={} if baseline else {BASELINE: ratio(median[kind], base.get(kind))},
                    baseline=baseline,
                    note=f"goal <= {GOAL_SECONDS} s" if kind == "wall" and not baseline else "",
                )
            )
    return shown
