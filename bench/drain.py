"""Drain throughput: how fast the consumer empties a full queue, against raw SQS (same emulator).

The queue is filled through the API with the consumer runner stopped, then the runner is started
and timed until every order is committed. The baseline empties a queue of the same type holding the
same number of producer-shaped messages with the runner's own receive and delete calls, on as many
threads as the runner has instances, and invokes nothing: the ratio is what the function (secret,
connection, insert through the proxy, synchronous replication) and the runner add on top of SQS.
Each component's memory (PSS) is read before the fill and after the drain.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bench import loops, soak, sqs, stats
from bench.model import Figure, Section, Tick
from sandbox import stack
from sandbox.drills.stats import percentile
from sandbox.platform.state import StackState
from sandbox.standins.aurora import database

COMMITS = (
    "SELECT count(DISTINCT order_id), min(EXTRACT(EPOCH FROM committed_at))::float8, "
    "max(EXTRACT(EPOCH FROM committed_at))::float8 FROM orders WHERE order_id LIKE %s"
)


@dataclass(frozen=True)
class Invocation:
    records: int
    ms: float


def parse_invocations(lines: Iterable[str]) -> list[Invocation]:
    """The runner's ``invocation`` log lines (JSON, one each) among the function's own lines.

    Their ``ms`` spans building the event and the handler (the delete runs beside the next one).
    """
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a traceback or a cut line
        if (
            isinstance(entry, dict)
            and entry.get("service") == "runner"
            and entry.get("message") == "invocation"
        ):
            found.append(Invocation(len(entry.get("records", [])), float(entry["ms"])))
    return found


def committed(state: StackState, prefix: str) -> tuple[int, float | None, float | None]:
    """(count, first, last commit epoch) of the orders with ``prefix``, read on the writer."""
    with database.connect(state, state.writer.name) as conn:
        count, first, last = conn.execute(COMMITS, (f"{prefix}%",)).fetchone()
    return int(count), first, last


def wait_committed(
    state: StackState, prefix: str, expected: int, timeout: float, tick: Tick
) -> tuple[int, float | None, float | None]:
    deadline = time.monotonic() + timeout
    while True:
        result = committed(state, prefix)
        tick("drain", result[0], expected)
        if result[0] >= expected or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def fill(state: StackState, prefix: str, count: int, clients: int, tick: Tick) -> loops.LoopResult:
    """Orders into the stack's queue through the API (the real producer path)."""
    done = 0

    def on_call(_: loops.Call) -> None:
        nonlocal done
        done += 1
        tick("fill", done, count)

    return loops.closed_loop(
        partial(loops.orders, state, prefix), count, clients, loops.time_bound(count), on_call
    )


def raw_baseline(state: StackState, count: int, clients: int, tick: Tick) -> tuple[int, float]:
    """(messages, seconds): receive+delete of ``count`` producer-shaped messages, no function."""
    url = sqs.create_queue(state, f"bench-drain-{uuid.uuid4().hex[:6]}")
    batches = math.ceil(count / 10)
    loops.closed_loop(
        partial(sqs.batch_sender, state, url, "raw", count),
        batches,
        clients,
        loops.time_bound(count),
    )
    done = 0

    def on_batch(size: int) -> None:
        nonlocal done
        done += size
        tick("raw receive+delete", done, count)

    in_queue = sqs.queued(state, url)
    return sqs.receive_and_delete(
        state, url, in_queue, state.runner.concurrency, loops.time_bound(count), on_batch
    )


@dataclass(frozen=True)
class Drained:
    """One drain: ``count`` orders queued through the API with the consumer stopped, then the
    consumer started (``started``) and waited for until every accepted order committed."""

    filled: loops.LoopResult
    queued: int  # messages in the queue when the consumer started
    started: float
    committed: int
    first: float | None  # first and last commit, epoch seconds on the writer's clock
    last: float | None
    invocations: list[Invocation]
    memory_before: dict[str, float] = field(default_factory=dict)  # component -> PSS, MiB
    memory_after: dict[str, float] = field(default_factory=dict)  # once every order committed

    @property
    def accepted(self) -> int:
        return len(self.filled.ok)

    @property
    def overall(self) -> float | None:
        """Orders/s from the consumer's start (its cold start included) to the last commit."""
        return stats.rate(self.committed, self.last - self.started) if self.last else None

    @property
    def steady(self) -> float | None:
        """Orders/s from the first commit to the last: the steady state."""
        if self.first is None or self.last is None:
            return None
        return stats.rate(self.committed - 1, self.last - self.first)


def drain(state: StackState, prefix: str, count: int, clients: int, tick: Tick) -> Drained:
    memory_before = memory(state)
    stack.stop(state, "consumer")
    try:
        filled = fill(state, prefix, count, clients, tick)
        queued = sqs.queued(state, state.queue_url)
        log = state.path("logs", "consumer.log")
        offset = log.stat().st_size if log.exists() else 0
        started = time.time()
    finally:
        stack.start(state, "consumer")
    accepted = len(filled.ok)
    total, first, last = wait_committed(state, prefix, accepted, loops.time_bound(accepted), tick)
    invocations = _read_invocations(log, offset)
    return Drained(
        filled, queued, started, total, first, last, invocations, memory_before, memory(state)
    )


def memory(state: StackState) -> dict[str, float]:
    """Each component's PSS in MiB, as `sandbox status` counts it (and the control plane's
    keeper, which it does not show)."""
    return {name: mib for name, (_, mib) in soak.memory(state).items()}


def run(state: StackState, count: int, clients: int, tick: Tick) -> Section:
    concurrency = state.runner.concurrency
    section = Section(
        "drain", f"Drain throughput: {count} orders, runner concurrency {concurrency}"
    )
    drained = drain(state, f"drain-{uuid.uuid4().hex[:6]}", count, clients, tick)
    accepted, total, started = drained.accepted, drained.committed, drained.started
    first, last, filled, queued = drained.first, drained.last, drained.filled, drained.queued
    raw_count, raw_seconds = raw_baseline(state, accepted, clients, tick)

    raw_rate = stats.rate(raw_count, raw_seconds)
    overall, steady = drained.overall, drained.steady
    section.figures = [
        Figure(
            "raw SQS receive+delete (no function)",
            raw_rate,
            "msg/s",
            baseline=True,
            note=f"{raw_count} messages, {concurrency} threads, the runner's own SQS calls",
        ),
        Figure(
            "drain: runner start -> all committed",
            overall,
            "orders/s",
            {"raw receive+delete": stats.ratio(overall, raw_rate)},
            note=f"{total}/{accepted} committed; includes the runner's cold start",
        ),
        Figure(
            "drain: first -> last commit",
            steady,
            "orders/s",
            {"raw receive+delete": stats.ratio(steady, raw_rate)},
            note="steady state, without the cold start",
        ),
        Figure(
            "runner cold start (start -> first commit)", first - started if first else None, "s"
        ),
        *invocation_figures(drained.invocations),
        *memory_figures(drained, concurrency),
        Figure(
            "API accept while filling (consumer stopped)",
            stats.rate(accepted, filled.elapsed),
            "orders/s",
            note=f"{clients} clients, {filled.failed} errors, {queued} messages then queued",
        ),
    ]
    section.details = {
        "orders": count,
        "accepted": accepted,
        "queued_before_start": queued,
        "committed": total,
        "drain_seconds": last - started if last else None,
        "steady_seconds": last - first if first and last else None,
        "raw_messages": raw_count,
        "raw_seconds": raw_seconds,
        "invocations": len(drained.invocations),
        "memory_mib_before": drained.memory_before,
        "memory_mib_after": drained.memory_after,
    }
    if total < accepted:
        section.error = f"only {total} of {accepted} orders committed before the time bound"
    return section


def _read_invocations(log: Path, offset: int) -> list[Invocation]:
    with log.open("rb") as handle:
        handle.seek(offset)
        return parse_invocations(handle.read().decode(errors="replace").splitlines())


def invocation_figures(invocations: list[Invocation]) -> list[Figure]:
    """The runner's per-invocation cost, from its own log lines."""
    if not invocations:
        return []
    records = sum(i.records for i in invocations)
    return [
        Figure(
            "runner invocation, median",
            percentile([i.ms for i in invocations], 50),
            "ms",
            note=f"event + handler; {len(invocations)} invocations, "
            f"{records / len(invocations):.1f} records each",
        ),
        Figure(
            "runner time per record",
            sum(i.ms for i in invocations) / records if records else None,
            "ms",
            note="invocation time / records: the function's cost per order",
        ),
    ]


def memory_figures(drained: Drained, concurrency: int) -> list[Figure]:
    """The consumer runner's, LocalStack's and the whole stack's PSS once the queue is drained,
    each with its figure before the fill (the runner's then was the one stopped for the fill)."""
    before, after = drained.memory_before, drained.memory_after
    rows = [
        ("consumer runner", "consumer", f"supervisor + {concurrency} instances"),
        ("LocalStack", "aws", "SQS, Secrets Manager, CloudWatch"),
    ]
    figures = [
        Figure(
            f"memory after the drain: {title}",
            after.get(name),
            "MiB",
            note=f"PSS; {before.get(name, 0):.0f} MiB before the fill; {what}",
        )
        for title, name, what in rows
    ]
    figures.append(
        Figure(
            "memory after the drain: whole stack",
            sum(after.values()),
            "MiB",
            note=f"PSS, every component and the control plane's keeper; "
            f"{sum(before.values()):.0f} MiB before the fill",
        )
    )
    return figures
