"""The two consumer profiles side by side: what the guidance's published sample's choices cost.

Each profile (`sandbox.profiles`: ``sandbox``, and ``guidance-sample`` with batch size 1, no
``ReportBatchItemFailures``, a secret and a connection per invocation, function timeout =
visibility timeout = 5 s) gets a stack of its own, started as ``sandbox up --consumer NAME``
would, one after the other so they never compete for the machine. On each:

- **throughput**: orders queued through the API with the consumer stopped, then drained
  (`bench.drain.drain`): how fast each profile's consumer empties a backlog;
- **retry budget**: the writer crashed and kept down, the proxy refusing meanwhile (the long
  outage's shape), and orders accepted once it is down; timed from their acceptance to the
  first message in the DLQ: an outage shorter than that parks nothing. It is what
  maxReceiveCount receives of a visibility timeout each come to, with each profile's settings.

The sandbox's profile is the baseline the sample is set against.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import drain, stats
from bench.model import Figure, Section, Tick
from sandbox import failover, localstack, profiles, stack
from sandbox.load import Client, order
from sandbox.queue import QueueSettings
from sandbox.stack import depth
from sandbox.state import RunnerSettings, StackState

BASELINE = "sandbox"
BUDGET_ORDERS = 10  # one batch for the sandbox's consumer, ten for the sample's
#: A bound on the wait for the first parked message, not a wait: it ends when one is parked.
BUDGET_BOUND_FACTOR = 4


@dataclass(frozen=True)
class Measured:
    profile: str
    queue: QueueSettings
    runner: RunnerSettings
    drained: drain.Drained
    to_dlq_s: float | None  # acceptance during the outage -> first message in the DLQ


def run(count: int, clients: int, tick: Tick, log: Callable[[str], None]) -> Section:
    section = Section("profiles", f"Consumer profiles: {count} orders drained on each's own stack")
    measured = []
    for name in profiles.NAMES:
        log(f"profile {name}: a stack of its own")
        measured.append(on_own_stack(name, lambda state: measure(state, count, clients, tick)))
    section.figures = figures(measured)
    section.details = {
        m.profile: {
            "batch_size": m.runner.batch_size,
            "report_batch_item_failures": m.runner.report_batch_item_failures,
            "function_timeout_seconds": m.runner.function_timeout_seconds,
            "visibility_timeout_seconds": m.queue.visibility_timeout_seconds,
            "max_receive_count": m.queue.max_receive_count,
            "accepted": m.drained.accepted,
            "committed": m.drained.committed,
            "to_dlq_seconds": m.to_dlq_s,
        }
        for m in measured
    }
    short = [m.profile for m in measured if m.drained.committed < m.drained.accepted]
    if short:
        section.error = f"not every accepted order committed on: {', '.join(short)}"
    return section


def on_own_stack(name: str, body: Callable[[StackState], Measured]) -> Measured:
    """Run ``body`` on a new stack with profile ``name`` (free ports, its own run dir), then
    take the stack down whatever happened."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"nzrpo-bench-{name}-"))
    queue, runner = profiles.settings(name, QueueSettings(), RunnerSettings())
    options = stack.Options(queue=queue, runner=runner, auto_ports=True, consumer=name)
    try:
        state, _ = stack.up(options, report=lambda step: None, directory=run_dir)
        stack.stop(state, "dashboard")  # not measured: only CPU taken from the rest
        return body(state)
    finally:
        stack.down(force=True, report=lambda step: None, directory=run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)


def measure(state: StackState, count: int, clients: int, tick: Tick) -> Measured:
    drained = drain.drain(state, f"profile-{uuid.uuid4().hex[:6]}", count, clients, tick)
    return Measured(state.consumer, state.queue, state.runner, drained, time_to_dlq(state))


def time_to_dlq(state: StackState) -> float | None:
    """Seconds from orders accepted while the writer is down to the first of them in the DLQ.

    The outage lasts until that happens (an event, bounded), then the cluster comes back.
    """
    sqs = localstack.client(state, "sqs")
    parked_before = depth(sqs, state.dlq_url).total
    accepted: list[float] = []
    parked: list[float] = []

    def first_parked() -> bool:
        if not accepted:  # the first look: the writer is down now
            accepted.extend(_send(state, BUDGET_ORDERS))
        if depth(sqs, state.dlq_url).total > parked_before:
            parked.append(time.time())
            return True
        return False

    settings = state.queue
    least = settings.max_receive_count * (settings.visibility_timeout_seconds + 1)
    until = failover.Until(
        first_parked, "a message reached the DLQ", BUDGET_BOUND_FACTOR * least, interval=0.2
    )
    failover.failover(state, "crash", until, hold=False, who="make bench (profiles)")
    return parked[0] - min(accepted) if parked and accepted else None


def _send(state: StackState, count: int) -> list[float]:
    """Send ``count`` orders through the API; the times they were accepted."""
    client = Client(state)
    prefix = f"budget-{uuid.uuid4().hex[:6]}"
    try:
        sent = [client.post(order(f"{prefix}-{index:03d}")) for index in range(count)]
    finally:
        client.close()
    return [one.answered_at for one in sent if one.accepted]


def figures(measured: list[Measured]) -> list[Figure]:
    """Per profile: its drain rate and its retry budget, each against the sandbox's."""
    base = next(m for m in measured if m.profile == BASELINE)

    def against(value: float | None, baseline: float | None, is_base: bool) -> dict:
        return {} if is_base else {BASELINE: stats.ratio(value, baseline)}

    rows: list[Figure] = []
    for m in measured:
        is_base = m is base
        timeouts = (
            f"function timeout {m.runner.function_timeout_seconds:g} s, visibility "
            f"{m.queue.visibility_timeout_seconds} s"
        )
        rows.append(
            Figure(
                f"{m.profile}: drain, first -> last commit",
                m.drained.steady,
                "orders/s",
                against(m.drained.steady, base.drained.steady, is_base),
                baseline=is_base,
                note=f"batch {m.runner.batch_size}; "
                f"{m.drained.committed}/{m.drained.accepted} committed",
            )
        )
        rows += [
            Figure(f"{m.profile}: {f.name}", f.value, f.unit, note=f.note)
            for f in drain.invocation_figures(m.drained.invocations)
        ]
        rows.append(
            Figure(
                f"{m.profile}: outage before the first order is parked",
                m.to_dlq_s,
                "s",
                against(m.to_dlq_s, base.to_dlq_s, is_base),
                baseline=is_base,
                note=f"{m.queue.max_receive_count} receives; {timeouts}",
            )
        )
    return rows
