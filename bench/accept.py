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
  (LocalStack alone, no SDK on the client's side). The sides take turns (`ROUNDS`), each wrk turn
  as long as the boto3 turn before it took. The consumer runner is stopped meanwhile (started
  again at the end), so draining the orders competes with no side for the machine's cores.
- At C clients, a turn of K sends through a client that journals each first
  (`sandbox.standins.sqs.journal`, as the gateway's does), against the raw ones: what the durable
  queue stand-in costs.
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
#: Each side of a comparison runs in as many turns, the sides taking turns, so that a change in
#: the machine's load while they run falls on every side alike.
ROUNDS = 3
HEALTH, ORDERS, SEND = "GET /health", "POST /orders", "SQS SendMessage"
JOURNALLED = "SQS SendMessage, journalled"


@dataclass(frozen=True)
class Sends:
    """One side's rounds of SendMessage from boto3 clients, one a thread (`loops.closed_loop`)."""

    rounds: list[loops.LoopResult]

    @property
    def rate(self) -> float | None:
        return stats.rate(sum(len(r.ok) for r in self.rounds), sum(r.elapsed for r in self.rounds))

    def latency(self) -> dict[str, float]:
        ms = [call.seconds * 1000 for r in self.rounds for call in r.ok]
        return latency(ms) if ms else {}

    def note(self) -> str:
        ok, failed = sum(len(r.ok) for r in self.rounds), sum(r.failed for r in self.rounds)
        bound = ", stopped at the time bound" if any(r.timed_out for r in self.rounds) else ""
        cut = self.latency()
        return (
            f"p50 {cut.get('p50', 0):.1f} ms, p99 {cut.get('p99', 0):.1f} ms; "
            f"{ok} ok, {failed} failed{bound}"
        )

    def details(self) -> dict[str, object]:
        rounds = [{"ok": len(r.ok), "failed": r.failed, "seconds": r.elapsed} for r in self.rounds]
        return {
            "rounds": rounds,
            "rate": self.rate,
            "latency_ms": self.latency(),
        }


@dataclass(frozen=True)
class Accept:
    """``POST /orders`` at ``width`` connections and its baselines at as many clients."""

    width: int
    sdk: Sends  # SendMessage from boto3, nothing around it
    direct: wrk.Run  # SendMessage from wrk: LocalStack alone
    orders: wrk.Run
    journalled: Sends | None  # SendMessage through a journalling client (at C clients only)


def run(state: StackState, count: int, clients: int, tick: Tick) -> Section:
    section = Section("api", f"API accept over keep-alive (wrk), {count} raw sends per baseline")
    widths = sorted({clients, WIDE})
    steps = len({1, *widths}) + 1 + ROUNDS * (3 * len(widths) + 1)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        tick("api", done, steps)

    health = _health(state, widths, step)
    prefix = f"api-{uuid.uuid4().hex[:6]}"
    stack.stop(state, "consumer")
    try:
        accepts = [
            _accept(state, width, count, f"{prefix}-{width}", width == clients, step)
            for width in widths
        ]
    finally:
        stack.start(state, "consumer")
    section.figures = [
        *_health_figures(health),
        *(figure for accept in accepts for figure in _accept_figures(accept)),
    ]
    section.details = {
        "rounds": ROUNDS,
        "health": {str(key): asdict(result) for key, result in health.items()},
        "accept": {
            str(a.width): {
                "sdk": a.sdk.details(),
                "direct": asdict(a.direct),
                "orders": asdict(a.orders),
                **({"journalled": a.journalled.details()} if a.journalled else {}),
            }
            for a in accepts
        },
    }
    return section


def _accept(
    state: StackState,
    width: int,
    count: int,
    prefix: str,
    journalled: bool,
    step: Callable[[], None],
) -> Accept:
    """The sides at ``width``, each to a queue of its own (the orders to the stack's), taking
    turns: each round sends ``count / ROUNDS`` from boto3, and the wrk sides run as long."""
    urls = {side: sqs.create_queue(state, f"bench-{side}-{prefix}") for side in ("s", "d", "j")}
    token = cognito.issue_token(state)
    sdk, jour, direct, orders = [], [], [], []
    raw = sqs.client(state, width)
    with sqs.journalling_client(state, width) as journalling:
        for turn in range(ROUNDS):
            tag = f"{prefix}-{turn}"
            sdk.append(_loop(partial(sqs.sender, raw, urls["s"], f"{tag}-s"), count, width))
            step()
            seconds = max(1, math.ceil(sdk[-1].elapsed))
            settings = {"WRK_QUEUE": urls["d"], "WRK_REGION": state.region}
            settings["WRK_PREFIX"] = f"{tag}-d"
            direct.append(wrk.run(state.aws_endpoint, width, seconds, mode="sqs", env=settings))
            step()
            settings = {"WRK_TOKEN": token, "WRK_PREFIX": f"{tag}-o"}
            orders.append(wrk.run(state.api_url, width, seconds, mode="orders", env=settings))
            step()
            if journalled:
                sender = partial(sqs.sender, journalling, urls["j"], f"{tag}-j")
                jour.append(_loop(sender, count, width))
                step()
    return Accept(
        width,
        Sends(sdk),
        wrk.combined(direct),
        wrk.combined(orders),
        Sends(jour) if journalled else None,
    )


def _loop(factory: loops.WorkerFactory, count: int, clients: int) -> loops.LoopResult:
    share = max(1, count // ROUNDS)
    return loops.closed_loop(factory, share, clients, loops.time_bound(share))


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
    width, sdk, direct, orders = accept.width, accept.sdk, accept.direct, accept.orders
    sdk_name = f"{SEND}, {width} boto3 clients"
    direct_name = f"{SEND} from wrk, {width} connections"
    figures = [
        Figure(
            f"{ORDERS} accepted, {width} connections",
            orders.rate,
            "orders/s",
            {
                sdk_name: stats.ratio(orders.rate, sdk.rate),
                direct_name: stats.ratio(orders.rate, direct.rate),
            },
            note=f"p50 {orders.p50_ms:.1f} ms, p99 {orders.p99_ms:.1f} ms; "
            f"{orders.requests} answered, {_errors(orders)}",
        ),
        Figure(f"{sdk_name} (baseline)", sdk.rate, "msg/s", baseline=True, note=sdk.note()),
        Figure(
            f"{direct_name} (baseline)",
            direct.rate,
            "msg/s",
            baseline=True,
            note=f"p50 {direct.p50_ms:.1f} ms, p99 {direct.p99_ms:.1f} ms; "
            f"{direct.requests} answered, {_errors(direct)}",
        ),
    ]
    if accept.journalled:
        figures.append(
            Figure(
                f"{JOURNALLED}, {width} clients: the durable queue's cost",
                accept.journalled.rate,
                "msg/s",
                {sdk_name: stats.ratio(accept.journalled.rate, sdk.rate)},
                note=f"each on disk (O_DSYNC) before it is sent; {accept.journalled.note()}",
            )
        )
    return figures


def _errors(result: wrk.Run) -> str:
    failed = {kind: n for kind, n in result.errors.items() if n}
    return ", ".join(f"{n} {kind} errors" for kind, n in failed.items()) or "no errors"
