"""The soak: `sandbox chaos` for half an hour at a steady rate, on a stack of its own.

It answers what a short test cannot: does anything leak, and does the account stay exact over
many faults of every kind. Each component's memory (PSS of its process tree, as `sandbox status`
measures it) is read every `SAMPLE_SECONDS`, with its pid: a fault restarts processes, and a
new process fills its caches again (PostgreSQL's shared buffers, the Python servers' imports and
clients: in their first minute, or on their first restore or failover), so growth is judged per
process, from its first sample to its last, and only for one that lived `LEAK_WINDOW_SECONDS`
or more; one that grew by more than `GROWTH_LIMIT` is named. The chaos run's account
(acknowledged, committed once, duplicates, parked, queued, lost) and each fault's time to whole
are in the section; it fails if anything was lost or doubled, or the stack was not whole.
"""

from __future__ import annotations

import threading
import time
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
SAMPLE_SECONDS = 60.0
LEAK_WINDOW_SECONDS = 600.0
#: One look at the memory: when, and each component's (pid, PSS in MiB).
Sample = tuple[float, dict[str, tuple[int, float]]]


def run(minutes: float, rate: float, tick: Tick, log: Callable[[str], None]) -> Section:
    title = f"Soak: sandbox chaos, {minutes:g} min at {rate:g} orders/s, a fault a minute"
    section = Section("soak", title)
    with own_stack(stack.Options(auto_ports=True), "soak", log) as state:
        stack.start(state, "dashboard")  # own_stack stops it; a chaos run kills it too
        log(f"soak: warming up, {WARM_UP_SECONDS:g} s of {rate:g} orders/s without faults")
        send_orders(state, int(rate * WARM_UP_SECONDS), rate, prefix="soak-warm-up")
        samples: list[Sample] = []
        done = threading.Event()
        sampler = threading.Thread(target=sample, args=(state, samples, done), daemon=True)
        sampler.start()
        total = int(minutes * 60)

        def progress(step: str, info: dict) -> None:
            if step == "live":
                tick("soak (seconds)", min(total, int(info["elapsed"])), total)
            elif step == "fault":
                log(f"soak: fault {info['row'].index} of {info['of']}: {info['row'].fault}")

        try:
            report = chaos.run(state, SEED, minutes, rate, INTERVAL_SECONDS, progress=progress)
        finally:
            done.set()
            sampler.join()
        samples.append((time.time(), memory(state)))
    lives = lifetimes(samples)
    section.figures = [
        Figure(
            f"{name} PSS at the end",
            samples[-1][1][name][1],
            "MiB",
            versus={"at its first look": life[-1][1] / life[0][1] if life[0][1] else None},
            note=f"{samples[0][1].get(name, (0, 0.0))[1]:.0f} MiB at the start; this process "
            f"{life[0][1]:.0f} MiB at its first look, {(life[-1][0] - life[0][0]) / 60:.0f} "
            f"min before; peak {max(p for _, p in life):.0f} MiB",
        )
        for name, life in sorted(lives.items())
        if name in samples[-1][1]
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
        "memory_samples": [{"time": at, "mib": seen} for at, seen in samples],
        "peak_queue_depth": report.peak_queue_depth,
    }
    problems = report.problems + [
        f"{name} (pid {pid}) grew {grew:.0%} in {minutes_:.0f} min"
        for name, pid, grew, minutes_ in leaks(samples)
    ]
    section.error = "; ".join(problems)
    return section


def memory(state: StackState) -> dict[str, tuple[int, float]]:
    """Each running component's pid and PSS, in MiB (the keeper too)."""
    state.refresh()
    where = runtime.of(state)
    return {
        name: (state.pids[name], round(where.memory_mib(state, name), 1))
        for name in sorted(state.pids)
        if runtime.alive(state, name)
    }


def sample(state: StackState, samples: list[Sample], done: threading.Event) -> None:
    """Every `SAMPLE_SECONDS` until ``done``: each component's pid and PSS."""
    while True:
        samples.append((time.time(), memory(state)))
        if done.wait(SAMPLE_SECONDS):
            return


def lifetimes(samples: list[Sample]) -> dict[str, list[tuple[float, float]]]:
    """Each component's last process: its (time, PSS) looks, from its first to the end."""
    last = samples[-1][1]
    return {
        name: [(at, seen[name][1]) for at, seen in samples if seen.get(name, (0,))[0] == pid]
        for name, (pid, _) in last.items()
    }


def leaks(samples: list[Sample]) -> list[tuple[str, int, float, float]]:
    """(component, pid, growth, minutes) of each process seen for `LEAK_WINDOW_SECONDS` or
    more that grew by more than `GROWTH_LIMIT` from its first look to its last (for one
    started during the soak, from its second: a minute after, its start is over)."""
    lives: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for at, seen in samples:
        for name, (pid, mib) in seen.items():
            lives.setdefault((name, pid), []).append((at, mib))
    first = {(name, pid) for name, (pid, _) in samples[0][1].items()}
    for key, life in lives.items():
        if key not in first:  # started during the soak: its first look may be mid-start
            lives[key] = life[1:]
    lives = {key: life for key, life in lives.items() if life}
    return [
        (name, pid, life[-1][1] / life[0][1] - 1, (life[-1][0] - life[0][0]) / 60)
        for (name, pid), life in lives.items()
        if life[-1][0] - life[0][0] >= LEAK_WINDOW_SECONDS
        and life[0][1]
        and life[-1][1] > life[0][1] * (1 + GROWTH_LIMIT)
    ]
