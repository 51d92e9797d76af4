"""API accept: ``POST /orders`` from an outside client over keep-alive, against raw SQS sends to
the same LocalStack in the same run; and the gateway's bare round trip.

The client is wrk (`bench.wrk`): keep-alive connections, each sending its next request once
answered (closed loop), so a rate is what the server sustains at that many connections.

- ``GET /health`` at 1, C and 64 connections, and with a new connection per request: what the
  HTTP server alone costs, and that no answer waits on the network stack (Nagle's algorithm
  meeting delayed ACKs would hold each reused connection's answers 40 ms).
- ``POST /orders`` at C and at 64 connections, each beside two baselines at as many clients: K raw
  ``SendMessage`` calls of producer-shaped messages from boto3 clients on as many threads (the SDK
  call the producer function itself makes, nothing around it), and ``SendMessage`` from wrk itself
  (LocalStack alone, no SDK on the client's side); the wrk runs last as long as the boto3 one took.
  The consumer runner is stopped meanwhile (started again at the end), so draining the orders
  competes with neither side for the machine's cores.
- K sends through a client that journals each first (`sandbox.standins.sqs.journal`, as the
  gateway's does), against the raw ones: what the durable queue stand-in costs.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

from bench import loops, sqs, stats, wrk
from bench.model import Figure, Section, Tick
from sandbox import stack
from sandbox.drills.stats import latency
from sandbox.platform.state import StackState
from sandbox.standins import cognito

HEALTH_SECONDS = 5
WIDE = 64  # the second concurrency of the accept runs: many clients at once
HEALTH, ORDERS, SEND = "GET /health", "POST /orders", "SQS SendMessage"
JOURNALLED = "SQS SendMessage, journalled"


@dataclass(frozen=True)
class Accept:
    """``POST /orders`` at ``width`` connections and its baselines at as many clients."""

    width: int
    sdk: loops.LoopResult  # SendMessage from boto3, one client a thread
    direct: wrk.Run  # SendMessage from wrk
    orders: wrk.Run


def run(state: StackState, count: int, clients: int, tick: Tick) -> Section:
    section = Section("api", f"API accept over keep-alive (wrk), {count} raw sends per baseline")
    widths = sorted({clients, WIDE})
    steps = len({1, *widths}) + 1 + 3 * len(widths) + 1
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        tick("api", done, steps)

    health = _health(state, widths, step)
    prefix = f"api-{uuid.uuid4().hex[:6]}"
    accepts = []
    stack.stop(state, "consumer")
    try:
        for width in widths:
            accepts.append(_accept(state, width, count, f"{prefix}-{width}", step))
        url = sqs.create_queue(state, f"bench-journalled-{uuid.uuid4().hex[:6]}")
        sender = partial(sqs.journalled_sender, state, url, f"{prefix}-j")
        journalled = _loop(sender, count, clients)
        step()
    finally:
        stack.start(state, "consumer")
    plain = next(a.sdk for a in accepts if a.width == clients)
    section.figures = [
        *_health_figures(health),
        *(figure for accept in accepts for figure in _accept_figures(accept)),
        Figure(
            f"{JOURNALLED}, {clients} clients: the durable queue's cost",
            _rate(journalled),
            "msg/s",
            {f"{SEND}, {clients} boto3 clients": stats.ratio(_rate(journalled), _rate(plain))},
            note=f"each on disk (fdatasync) before it is sent; {_note(journalled)}",
        ),
    ]
    section.details = {
        "health": {str(key): asdict(result) for key, result in health.items()},
        "accept": {
            str(a.width): {
                "sdk": _loop_details(a.sdk),
                "direct": asdict(a.direct),
                "orders": asdict(a.orders),
            }
            for a in accepts
        },
        "journalled": _loop_details(journalled),
    }
    return section


def _accept(
    state: StackState, width: int, count: int, prefix: str, step: Callable[[], None]
) -> Accept:
    """The three runs at ``width``, each to a queue of its own (the orders to the stack's)."""
    url = sqs.create_queue(state, f"bench-send-{prefix}")
    sdk = _loop(partial(sqs.sender, state, url, f"{prefix}-s"), count, width)
    step()
    seconds = max(1, math.ceil(sdk.elapsed))
    url = sqs.create_queue(state, f"bench-direct-{prefix}")
    settings = {"WRK_QUEUE": url, "WRK_REGION": state.region, "WRK_PREFIX": f"{prefix}-d"}
    direct = wrk.run(state.aws_endpoint, width, seconds, mode="sqs", env=settings)
    step()
    token = cognito.issue_token(state)
    settings = {"WRK_TOKEN": token, "WRK_PREFIX": f"{prefix}-o"}
    orders = wrk.run(state.api_url, width, seconds, mode="orders", env=settings)
    step()
    return Accept(width, sdk, direct, orders)


def _health(
    state: StackState, widths: list[int], step: Callable[[], None]
) -> dict[int | str, wrk.Run]:
    """``GET /health`` at 1 and at each of ``widths`` keep-alive connections, then a new
    connection per request (``Connection: close``), one connection at a time."""
    url = f"{state.api_url}/health"
    found: dict[int | str, wrk.Run] = {}
    for width in sorted({1, *widths}):
        found[width] = wrk.run(url, width, HEALTH_SECONDS)
        step()
    found["close"] = wrk.run(url, 1, HEALTH_SECONDS, headers=("Connection: close",))
    step()
    return found


def _health_figures(health: dict[int | str, wrk.Run]) -> list[Figure]:
    def note(result: wrk.Run) -> str:
        return f"p99 {result.p99_ms:.1f} ms, {result.rate:,.0f} answers/s; {_errors(result)}"

    figures = [
        Figure(
            f"{HEALTH} p50, {width} keep-alive connection{'s' if width != 1 else ''}",
            result.p50_ms,
            "ms",
            note=note(result),
        )
        for width, result in health.items()
        if width != "close"
    ]
    close = health["close"]
    name = f"{HEALTH} p50, a new connection per request"
    figures.append(Figure(name, close.p50_ms, "ms", baseline=True, note=note(close)))
    return figures


def _accept_figures(accept: Accept) -> list[Figure]:
    sdk, direct, orders = accept.sdk, accept.direct, accept.orders
    width = accept.width
    sdk_name = f"{SEND}, {width} boto3 clients"
    direct_name = f"{SEND} from wrk, {width} connections"
    sdk_ms = latency([c.seconds * 1000 for c in sdk.ok]) if sdk.ok else {}
    return [
        Figure(
            f"{ORDERS} accepted, {width} connections",
            orders.rate,
            "orders/s",
            {
                sdk_name: stats.ratio(orders.rate, _rate(sdk)),
                direct_name: stats.ratio(orders.rate, direct.rate),
            },
            note=f"p50 {orders.p50_ms:.1f} ms, p99 {orders.p99_ms:.1f} ms; "
            f"{orders.requests} answered, {_errors(orders)}",
        ),
        Figure(
            f"{sdk_name} (baseline)",
            _rate(sdk),
            "msg/s",
            baseline=True,
            note=f"p50 {sdk_ms.get('p50', 0):.1f} ms, p99 {sdk_ms.get('p99', 0):.1f} ms; "
            f"{_note(sdk)}",
        ),
        Figure(
            f"{direct_name} (baseline)",
            direct.rate,
            "msg/s",
            baseline=True,
            note=f"p50 {direct.p50_ms:.1f} ms, p99 {direct.p99_ms:.1f} ms; "
            f"{direct.requests} answered, {_errors(direct)}",
        ),
    ]


def _loop(factory: loops.WorkerFactory, count: int, clients: int) -> loops.LoopResult:
    return loops.closed_loop(factory, count, clients, loops.time_bound(count))


def _rate(result: loops.LoopResult) -> float | None:
    return stats.rate(len(result.ok), result.elapsed)


def _loop_details(result: loops.LoopResult) -> dict[str, object]:
    return {
        "ok": len(result.ok),
        "failed": result.failed,
        "seconds": result.elapsed,
        "timed_out": result.timed_out,
        "rate": _rate(result),
        "latency_ms": latency([c.seconds * 1000 for c in result.ok]) if result.ok else {},
    }


def _errors(result: wrk.Run) -> str:
    failed = {kind: n for kind, n in result.errors.items() if n}
    return ", ".join(f"{n} {kind} errors" for kind, n in failed.items()) or "no errors"


def _note(result: loops.LoopResult) -> str:
    bound = ", stopped at the time bound" if result.timed_out else ""
    return f"{len(result.ok)} ok, {result.failed} failed{bound}"
