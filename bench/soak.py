"""The soak: `sandbox chaos` for half an hour at a steady rate, on a stack of its own.

It answers what a short test cannot: does anything leak, and does the account stay exact over
many faults of every kind. Each component's memory (PSS of its process tree, as `sandbox status`
measures it) is read after `WARM_UP_SECONDS` of the same traffic without faults (PostgreSQL's
shared buffers and the Python servers' caches fill in the first minute: that is not a leak)
and after the queue has drained at the end; a component that grew by more than `GROWTH_LIMIT`
is named. A component restarted by a fault is measured as the new process. The chaos run's
account (acknowledged, committed once, duplicates, parked, queued, lost) and each fault's time
to whole are in the section; it fails if anything was lost or doubled, or the stack was not whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from bench.model import Figure, Section, Tick
from bench.stacks import own_stack
from sandbox import stack
from sandbox.drills import chaos
from sandbox.ops.load import send_orders
from sandbox.platform import runtime
from sandbox.platform.state import StackState

#: A component whose memory grows by more than this share over the soak is named.
GROWTH_LIMIT = 0.20
SEED = 30
INTERVAL_SECONDS = 60.0
WARM_UP_SECONDS = 60.0


def run(minutes: float, rate: float, tick: Tick, log: Callable[[str], None]) -> Section:
    title = f"Soak: sandbox chaos, {minutes:g} min at {rate:g} orders/s, a fault a minute"
    section = Section("soak", title)
    with own_stack(stack.Options(auto_ports=True), "soak", log) as state:
        stack.start(state, "dashboard")  # own_stack stops it; a chaos run kills it too
        log(f"soak: warming up, {WARM_UP_SECONDS:g} s of {rate:g} orders/s without faults")
        send_orders(state, int(rate * WARM_UP_SECONDS), rate, prefix="soak-warm-up")
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
    if report.account:
        counted = asdict(report.account)
        section.figures += [
            Figure(what, counted[key], "orders")
            for key, what in (
                ("acknowledged", "orders acknowledged"),
                ("committed_once", "committed once"),
                ("duplicates", "committed more than once"),
                ("lost", "acknowledged and lost"),
                ("in_dlq", "in the DLQ"),
                ("client_errors", "client errors after retries"),
            )
        ]
    times = [row.whole_after_s for row in report.faults if row.whole_after_s is not None]
    section.figures.append(
        Figure(
            "fault -> whole again, the longest",
            max(times, default=None),
            "s",
            note=f"{len(report.faults)} faults, median {sorted(times)[len(times) // 2]:.1f} s"
            if times
            else "no fault",
        )
    )
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
