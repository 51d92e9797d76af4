"""The soak: `sandbox chaos` for half an hour at a steady rate, on a stack of its own.

It answers what a short test cannot: does anything leak, and does the account stay exact over
many faults of every kind. Each component's memory (PSS of its process tree, as `sandbox status`
measures it) is read before the first fault and after the queue has drained at the end; a
component that grew by more than `GROWTH_LIMIT` is named. The chaos run's account (acknowledged,
committed once, duplicates, parked, queued, lost) and each fault's time to whole are kept in the
section's details; the section fails if anything was lost or doubled, or the stack was not whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from bench.model import Figure, Section, Tick
from bench.stacks import own_stack
from sandbox import stack
from sandbox.drills import chaos
from sandbox.platform import runtime
from sandbox.platform.state import StackState

#: A component whose memory grows by more than this share over the soak is named.
GROWTH_LIMIT = 0.20
SEED = 30
INTERVAL_SECONDS = 60.0


def run(minutes: float, rate: float, tick: Tick, log: Callable[[str], None]) -> Section:
    title = f"Soak: sandbox chaos, {minutes:g} min at {rate:g} orders/s, a fault a minute"
    section = Section("soak", title)
    with own_stack(stack.Options(auto_ports=True), "soak", log) as state:
        stack.start(state, "dashboard")  # own_stack stops it; a chaos run kills it too
        before = memory(state)
        total = int(minutes * 60)

        def progress(step: str, info: dict) -> None:
            if step == "live":
                tick("soak (seconds)", min(total, int(info["elapsed"])), total)
            elif step == "fault":
                log(f"soak: fault {info['row'].index} of {info['of']}: {info['row'].fault}")

        report = chaos.run(state, SEED, minutes, rate, INTERVAL_SECONDS, progress=progress)
        after = memory(state)
    section.figures = [
        Figure(
            f"{name} PSS at the end",
            after.get(name),
            "MiB",
            versus={"at the start": after[name] / before[name] if before.get(name) else None},
            note=f"{before.get(name, 0):.0f} MiB at the start",
        )
        for name in sorted(set(before) | set(after))
        if name in after
    ]
    section.details = {
        "account": asdict(report.account) if report.account else None,
        "faults": [asdict(row) for row in report.faults],
        "memory_mib": {"start": before, "end": after},
        "peak_queue_depth": report.peak_queue_depth,
    }
    grew = [
        name
        for name in after
        if before.get(name) and after[name] > before[name] * (1 + GROWTH_LIMIT)
    ]
    problems = report.problems + [
        f"{name} grew {after[name] / before[name] - 1:.0%} over the soak" for name in grew
    ]
    section.error = "; ".join(problems)
    return section


def memory(state: StackState) -> dict[str, float]:
    """Each running component's PSS, in MiB (the keeper too)."""
    state.refresh()
    where = runtime.of(state)
    return {
        name: round(where.memory_mib(state, name), 1)
        for name in sorted(state.pids)
        if runtime.alive(state, name)
    }
