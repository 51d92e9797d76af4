"""A stack component's lifecycle, written once: start, wait until ready, stop.

testcontainers' way: the lifecycle lives in one base class and each stand-in supplies its hooks
(`command`, `healthy`; `prepare` and `ready` where the defaults do not fit; the timeouts and the
stop signal as class attributes). The runtime (`sandbox.platform.runtime`) decides where the
command runs; nothing here knows.
"""

from __future__ import annotations

import signal
import time

from sandbox.platform import process, runtime
from sandbox.platform.state import StackState


class Component:
    """A server of the stack. ``name`` is its key in the state (pids, ports) and its service's
    name in compose/docker-compose.yml; ``title`` says it in words."""

    name: str
    title: str
    #: How long a start may take before it is an error (a first node start initialises).
    start_timeout: float = 30.0
    #: Errors of `ready` that end the wait at once (the server exited), instead of "not yet".
    fatal: tuple[type[BaseException], ...] = ()
    #: False: `start` returns once it runs and whoever needs it waits (`wait`) later, so the
    #: stack starts the next servers meanwhile.
    wait_on_start: bool = True
    stop_signal: int = signal.SIGTERM

    def prepare(self, state: StackState) -> None:
        """Make what the server needs, where it is about to run (natively the runtime calls it,
        in a container `sandbox.stack.serve` does); idempotent, a restart calls it again. By
        default there is nothing to make: it reads what the stack provisioned."""

    def command(self, state: StackState) -> process.Command:
        """What runs."""
        raise NotImplementedError

    def healthy(self, state: StackState) -> bool:
        """Whether it answers now; an exception means no."""
        raise NotImplementedError

    def ready(self, state: StackState, since: float) -> bool:
        """What a start started at ``since`` (epoch seconds) waits for: by default, health."""
        return self.healthy(state)

    def stop_timeout(self, state: StackState) -> float:
        """How long a stop waits for it to exit before it is killed."""
        return 10.0

    def start(self, state: StackState) -> None:
        """Start it where the stack's servers run, record its pid, wait until it is ready."""
        since = time.time()
        state.pids[self.name] = runtime.of(state).start(state, self)
        if self.wait_on_start:
            self.wait(state, since)

    def wait(self, state: StackState, since: float = 0.0) -> None:
        process.wait_until(
            lambda: self.ready(state, since),
            timeout=self.start_timeout,
            what=self.title,
            fatal=self.fatal,
        )

    def stop(self, state: StackState) -> None:
        runtime.stop(state, self.name, sig=self.stop_signal, timeout=self.stop_timeout(state))

    def restart(self, state: StackState) -> None:
        """Start it again after it crashed, unasked: what is left of it (a frozen process) goes
        first. Its pid stays on record until the new one replaces it: a start that fails is
        tried again, not taken for a stop on purpose."""
        last = state.pids.get(self.name)
        runtime.stop(state, self.name, sig=self.stop_signal, timeout=self.stop_timeout(state))
        if last:
            state.pids[self.name] = last
        self.start(state)
