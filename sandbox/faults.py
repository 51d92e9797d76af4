"""Faults other than a failover, each a CLI command and a drill fault."""

from __future__ import annotations

import signal
import time

from sandbox import events, localstack, process, stack
from sandbox.failover import Until
from sandbox.queue import depth
from sandbox.state import StackState

#: How many times the retry budget's least duration (every receive a visibility timeout apart,
#: plus LocalStack's ~1 s lateness) the long outage may last before it is an error. Only a
#: broken stack (no consumer receiving) gets near it; a slow machine takes longer per receive,
#: not four times the budget.
BUDGET_BOUND_FACTOR = 4
#: ... and never less than this, so a small test queue's bound is still minutes.
MIN_BUDGET_BOUND_SECONDS = 600.0


def hang(state: StackState, seconds: float) -> None:
    """The writer stops answering (SIGSTOP to all its processes), then carries on (SIGCONT)."""
    writer = state.writer.name
    pid = state.pids[writer]
    process.signal_group(pid, signal.SIGSTOP)
    events.record(state, "writer-hung", f"writer {writer} stopped responding for {seconds:g} s")
    try:
        time.sleep(seconds)
    finally:
        process.signal_group(pid, signal.SIGCONT)
        events.record(state, "writer-resumed", f"writer {writer} responding again")


def proxy_restart(state: StackState) -> None:
    stack.restart(state, "proxy")
    events.record(state, "proxy-restarted", "PgBouncer restarted")


def consumer_crash(state: StackState) -> None:
    stack.kill(state, "consumer")
    events.record(state, "consumer-crashed", "consumer runner killed (SIGKILL)")
    time.sleep(1)
    stack.start(state, "consumer")


def retry_budget_spent(state: StackState) -> Until:
    """The long outage: until every message queued before or during it has run out of receives.

    That is the event "the queue is empty, nothing in flight, and the DLQ has grown": the
    consumer cannot commit during the outage, so a message leaves the queue only for the DLQ.
    How long it takes depends on how fast the consumer fails each batch, so it is waited for,
    not computed from the queue's settings.
    """
    sqs = localstack.client(state, "sqs")
    parked_before = depth(sqs, state.dlq_url).total

    def spent() -> bool:
        queued = depth(sqs, state.queue_url).total
        return queued == 0 and depth(sqs, state.dlq_url).total > parked_before

    settings = state.queue
    least = settings.max_receive_count * (settings.visibility_timeout_seconds + 1)
    bound = max(MIN_BUDGET_BOUND_SECONDS, BUDGET_BOUND_FACTOR * least)
    return Until(spent, "every queued message had run out of receives and moved to the DLQ", bound)
