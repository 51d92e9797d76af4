"""API accept throughput and latency, against the gateway's bare round trip and raw SQS sends.

K orders go to ``POST /orders`` from C concurrent clients as fast as they are answered (closed
loop). Two baselines from the same run and the same client code and concurrency:
``GET /health`` (the HTTP server alone: what auth, the producer function and its SQS send add on
top) and SQS ``SendMessage`` of producer-shaped messages straight to LocalStack (the queue alone:
what the gateway and function add to the one call they must make). The same sends through a
client that journals each first (`sandbox.standins.sqs.journal`, as the gateway's does) are set
against the raw ones: what the durable queue stand-in costs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial

from bench import loops, sqs, stats
from bench.model import Figure, Section, Tick
from sandbox.drills.stats import latency
from sandbox.platform.state import StackState

ORDERS, HEALTH, SEND = "POST /orders", "GET /health", "SQS SendMessage"
JOURNALLED = "SQS SendMessage, journalled"


def measure(
    name: str, factory: loops.WorkerFactory, count: int, clients: int, tick: Tick
) -> loops.LoopResult:
    done = 0

    def on_call(_: loops.Call) -> None:
        nonlocal done
        done += 1
        tick(name, done, count)

    return loops.closed_loop(factory, count, clients, loops.time_bound(count), on_call)


def run(state: StackState, count: int, clients: int, tick: Tick) -> Section:
    section = Section("api", f"API accept: {count} orders from {clients} concurrent clients")
    prefix = f"api-{uuid.uuid4().hex[:6]}"
    send_url = sqs.create_queue(state, f"bench-send-{uuid.uuid4().hex[:6]}")
    journalled_url = sqs.create_queue(state, f"bench-journalled-{uuid.uuid4().hex[:6]}")
    results = {
        HEALTH: measure(HEALTH, partial(loops.health, state), count, clients, tick),
        SEND: measure(SEND, partial(sqs.sender, state, send_url, prefix), count, clients, tick),
        JOURNALLED: measure(
            JOURNALLED,
            partial(sqs.journalled_sender, state, journalled_url, f"{prefix}-j"),
            count,
            clients,
            tick,
        ),
        ORDERS: measure(ORDERS, partial(loops.orders, state, prefix), count, clients, tick),
    }
    rates = {name: stats.rate(len(r.ok), r.elapsed) for name, r in results.items()}
    latencies = {
        name: latency([c.seconds * 1000 for c in r.ok]) if r.ok else {}
        for name, r in results.items()
    }

    def versus(value: float | None, pick: Callable[[str], float | None]) -> dict[str, float | None]:
        return {name: stats.ratio(value, pick(name)) for name in (HEALTH, SEND)}

    section.figures = [
        Figure(
            f"{ORDERS} accepted",
            rates[ORDERS],
            "orders/s",
            versus(rates[ORDERS], rates.get),
            note=_note(results[ORDERS]),
        ),
        *(
            Figure(
                f"{ORDERS} latency {cut}",
                latencies[ORDERS].get(cut),
                "ms",
                versus(latencies[ORDERS].get(cut), lambda name, cut=cut: latencies[name].get(cut)),
            )
            for cut in ("p50", "p95", "p99")
        ),
        Figure(
            f"{JOURNALLED}: the durable queue's cost",
            rates[JOURNALLED],
            "msg/s",
            {SEND: stats.ratio(rates[JOURNALLED], rates[SEND])},
            note=f"each on disk (fdatasync) before it is sent; {_note(results[JOURNALLED])}",
        ),
        *(
            Figure(
                f"{name} (baseline)",
                rates[name],
                "req/s",
                baseline=True,
                note=f"p50 {latencies[name].get('p50', 0):.1f} ms, "
                f"p99 {latencies[name].get('p99', 0):.1f} ms; {_note(results[name])}",
            )
            for name in (HEALTH, SEND)
        ),
    ]
    section.details = {
        name: {
            "calls": len(r.calls),
            "ok": len(r.ok),
            "failed": r.failed,
            "seconds": r.elapsed,
            "timed_out": r.timed_out,
            "rate": rates[name],
            "latency_ms": latencies[name],
        }
        for name, r in results.items()
    }
    return section


def _note(result: loops.LoopResult) -> str:
    bound = ", stopped at the time bound" if result.timed_out else ""
    return f"{len(result.ok)} ok, {result.failed} failed{bound}"
