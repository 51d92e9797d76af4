"""The two consumer profiles side by side: what the guidance's published sample's choices cost.

Each profile (`sandbox.spec.profiles`: ``sandbox``, and ``guidance-sample`` with batch size 1, no
``ReportBatchItemFailures``, a secret and a connection per invocation, function timeout =
visibility timeout = 5 s) gets a stack of its own, started as ``sandbox up --consumer NAME``
would, one after the other so they never compete for the machine. On each:

- **throughput**: orders queued through the API with the consumer stopped, then drained
  (`bench.drain.drain`): how fast each profile's consumer empties a backlog;
- **memory**: each component's PSS on the new stack before anything was sent (an idle `make up`
  stack) and once the backlog is drained;
- **retry budget**: the writer crashed and kept down, the proxy refusing meanwhile (the long
  outage's shape), and orders accepted once it is down; timed from their acceptance to the
  first message in the DLQ: an outage shorter than that parks nothing. It is what
  maxReceiveCount receives of a visibility timeout each come to, with each profile's settings.

The sandbox's profile is the baseline the sample is set against.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from bench import drain, stats
from bench.model import Figure, Section, Tick
from bench.stacks import own_stack
from sandbox import stack
from sandbox.ops import failover, faults
from sandbox.ops.load import Sent, send_orders
from sandbox.platform.state import StackState
from sandbox.spec import profiles
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings
from sandbox.standins import localstack
from sandbox.standins.aurora import cluster
from sandbox.standins.sqs import depth

BASELINE = "sandbox"
BUDGET_ORDERS = 10  # one batch for the sandbox's consumer, ten for the sample's
BUDGET_RATE = 50.0  # orders/s: all ten sent within a fifth of a second of the outage's start


@dataclass(frozen=True)
class Measured:
    profile: str
    queue: QueueSettings
    runner: RunnerSettings
    drained: drain.Drained
    to_dlq_s: float | None  # acceptance during the outage -> first message in the DLQ


def run(count: int, clients: int, tick: Tick, log: Callable[[str], None]) -> Section:
    section = Section("profiles", f"Consumer profiles: {count} orders drained on each's own stack")
    measured, failed = [], []
    for name in profiles.NAMES:
        log(f"profile {name}: a stack of its own")
        try:
            measured.append(on_own_stack(name, count, clients, tick, log))
        except Exception as error:  # the other profile's figures still count
            log(f"[red]profile {name} failed: {type(error).__name__}: {error}[/red]")
            failed.append(f"{name}: {type(error).__name__}: {error}")
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
            "memory_mib_idle": m.drained.memory_before,
            "memory_mib_drained": m.drained.memory_after,
        }
        for m in measured
    }
    short = [m.profile for m in measured if not complete(m)]
    failed += [f"{name}: not every accepted order committed" for name in short]
    section.error = "; ".join(failed)
    return section


def on_own_stack(
    name: str, count: int, clients: int, tick: Tick, log: Callable[[str], None]
) -> Measured:
    """Profile ``name`` measured on a new stack of its own; its logs are kept if the stack
    failed or did not commit every order it accepted."""
    queue, runner = profiles.settings(name, QueueSettings(), RunnerSettings())
    options = stack.Options(queue=queue, runner=runner, auto_ports=True, consumer=name)
    done: Measured | None = None
    with own_stack(options, f"profile {name}", log, lambda: not complete(done)) as state:
        done = measure(state, count, clients, tick)
    assert done is not None  # the block either measured or raised
    return done


def complete(measured: Measured | None) -> bool:
    """Every order the profile's stack accepted was committed (else its logs are kept); None:
    nothing was measured."""
    return measured is not None and measured.drained.committed >= measured.drained.accepted


def measure(state: StackState, count: int, clients: int, tick: Tick) -> Measured:
    drained = drain.drain(state, f"profile-{uuid.uuid4().hex[:6]}", count, clients, tick)
    return Measured(state.consumer, state.queue, state.runner, drained, time_to_dlq(state))


def time_to_dlq(state: StackState) -> float | None:
    """Seconds from orders accepted while the writer is down to the first of them in the DLQ.

    The outage lasts until that happens (an event, bounded), then the cluster comes back.
    """
    sqs = localstack.client(state, "sqs")
    parked_before = depth(sqs, state.dlq_url).total
    sent: list[Sent] = []
    parked: list[float] = []

    def first_parked() -> bool:
        if not sent:  # the first look: the writer is down now
            prefix = f"budget-{uuid.uuid4().hex[:6]}"
            sent.extend(send_orders(state, BUDGET_ORDERS, BUDGET_RATE, prefix=prefix))
        if depth(sqs, state.dlq_url).total > parked_before:
            parked.append(time.time())
            return True
        return False

    bound = faults.retry_budget_bound(state.queue)
    until = cluster.Until(first_parked, "a message reached the DLQ", bound, interval=0.2)
    failover.failover(state, "crash", until, hold=False, who="make bench (profiles)")
    accepted = [one.answered_at for one in sent if one.accepted]
    return parked[0] - min(accepted) if parked and accepted else None


def figures(measured: list[Measured]) -> list[Figure]:
    """Per profile: its drain rate and its retry budget, each against the sandbox's (if it
    was measured: otherwise the ratios are unknown, never against another baseline)."""
    base = next((m for m in measured if m.profile == BASELINE), None)

    def against(value: float | None, baseline: float | None, is_base: bool) -> dict:
        return {} if is_base else {BASELINE: stats.ratio(value, baseline)}

    base_steady = base.drained.steady if base else None
    base_to_dlq = base.to_dlq_s if base else None
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
                against(m.drained.steady, base_steady, is_base),
                baseline=is_base,
                note=f"batch {m.runner.batch_size}; "
                f"{m.drained.committed}/{m.drained.accepted} committed",
            )
        )
        rows += [
            Figure(f"{m.profile}: {f.name}", f.value, f.unit, note=f.note)
            for f in drain.invocation_figures(m.drained.invocations)
        ]
        rows += memory_figures(m)
        rows.append(
            Figure(
                f"{m.profile}: outage before the first order is parked",
                m.to_dlq_s,
                "s",
                against(m.to_dlq_s, base_to_dlq, is_base),
                baseline=is_base,
                note=f"{m.queue.max_receive_count} receives; {timeouts}",
            )
        )
    return rows


def memory_figures(m: Measured) -> list[Figure]:
    """The profile's new stack, idle (nothing sent yet) and once the backlog is drained."""
    idle, drained = m.drained.memory_before, m.drained.memory_after
    if not idle:
        return []
    largest = sorted(idle.items(), key=lambda item: -item[1])
    parts = ", ".join(f"{name} {mib:.0f}" for name, mib in largest)
    return [
        Figure(
            f"{m.profile}: idle stack memory",
            sum(idle.values()),
            "MiB",
            note=f"PSS of a new stack, nothing sent yet: {parts}",
        ),
        Figure(
            f"{m.profile}: consumer runner memory, idle -> drained",
            drained.get("consumer"),
            "MiB",
            note=f"PSS; {idle.get('consumer', 0):.0f} MiB idle; supervisor + "
            f"{m.runner.concurrency} instances",
        ),
    ]
