"""Load loops, each bounded by a count and by time so a stuck stack cannot hang the benchmark."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from sandbox.ops.load import Client, order
from sandbox.platform.state import StackState

# One worker per thread: a call that takes the request's index and says whether it succeeded.
Worker = Callable[[int], bool]
WorkerFactory = Callable[[], AbstractContextManager[Worker]]


def time_bound(count: int) -> float:
    """Seconds allowed for ``count`` operations: generous, since under 5 per second (or 2 minutes
    for a small count) means the stack is broken rather than slow."""
    return max(120.0, count / 5)


@dataclass(frozen=True)
class Call:
    ok: bool
    started: float  # time.monotonic()
    seconds: float


@dataclass(frozen=True)
class LoopResult:
    calls: list[Call]
    timed_out: bool

    @property
    def ok(self) -> list[Call]:
        return [call for call in self.calls if call.ok]

    @property
    def failed(self) -> int:
        return len(self.calls) - len(self.ok)

    @property
    def elapsed(self) -> float:
        """First request sent -> last answer received."""
        if not self.calls:
            return 0.0
        return max(c.started + c.seconds for c in self.calls) - min(c.started for c in self.calls)


def closed_loop(
    factory: WorkerFactory,
    count: int,
    concurrency: int,
    max_seconds: float,
    on_call: Callable[[Call], None] | None = None,
) -> LoopResult:
    """``concurrency`` clients share ``count`` calls, each sending its next once answered.

    Closed-loop ("as fast as the client allows") rather than paced, so the result is the rate the
    server sustains at that concurrency. Each thread builds its own worker (its own HTTP connection
    or boto3 client), as separate clients would. Stops early after ``max_seconds``.
    """
    calls: list[Call] = []
    lock = threading.Lock()
    next_index = iter(range(count))
    deadline = time.monotonic() + max_seconds
    timed_out = threading.Event()

    def take() -> int | None:
        with lock:
            return next(next_index, None)

    def client() -> None:
        with factory() as work:
            while (index := take()) is not None:
                if time.monotonic() > deadline:
                    timed_out.set()
                    return
                started = time.monotonic()
                try:
                    ok = work(index)
                except Exception:  # one failed call is a data point, not the end of the client
                    ok = False
                call = Call(ok, started, time.monotonic() - started)
                with lock:
                    calls.append(call)
                if on_call:
                    on_call(call)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoopResult(calls, timed_out.is_set())


class PacedLoad(threading.Thread):
    """A light, steady stream of orders through the queued path (the API), until stopped.

    Open-loop at ``rate`` per second: a failover must not slow the traffic that measures it.
    Bounded by ``max_seconds`` in case nobody stops it.
    """

    def __init__(self, state: StackState, prefix: str, rate: float, max_seconds: float) -> None:
        super().__init__(daemon=True)
        self.state, self.prefix, self.rate, self.max_seconds = state, prefix, rate, max_seconds
        self.accepted = 0
        self.errors = 0
        self.done = threading.Event()

    def run(self) -> None:
        client = Client(self.state)
        started = time.monotonic()
        try:
            for index in range(int(self.rate * self.max_seconds)):
                due = started + index / self.rate
                if self.done.wait(max(0.0, due - time.monotonic())):
                    return
                if client.post(order(f"{self.prefix}-{index:06d}")).accepted:
                    self.accepted += 1
                else:
                    self.errors += 1
        finally:
            client.close()

    def stop(self) -> None:
        self.done.set()
        self.join()


@contextmanager
def orders(state: StackState, prefix: str) -> Iterator[Worker]:
    """A worker that posts orders ``<prefix>-<index>`` to the API (the queued path)."""
    client = Client(state)
    try:
        yield lambda index: client.post(order(f"{prefix}-{index:06d}")).accepted
    finally:
        client.close()
