"""Faults other than a failover, each a CLI command and a drill fault."""

from __future__ import annotations

import signal
import time

from sandbox import events, process, stack
from sandbox.state import StackState


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
