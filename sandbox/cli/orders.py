"""`sandbox send`, `load`, `traffic`, `customer`: orders through the API, and the fix for the
poison one."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sandbox.cli.app import app, console
from sandbox.ops import traffic
from sandbox.ops.load import POISON_CUSTOMER_ID, Client, order, send_orders
from sandbox.platform.state import load
from sandbox.standins.aurora import database


@app.command()
def send(
    customer_id: Annotated[int, typer.Option(help="Customer (1-1000 exist)")] = 1,
    amount: Annotated[str, typer.Option(help="Amount, e.g. 12.50")] = "19.99",
    order_id: Annotated[str | None, typer.Option(help="Idempotency key (default: random)")] = None,
    note: Annotated[str, typer.Option(help="Free text, stored verbatim")] = "",
    poison: Annotated[
        bool, typer.Option("--poison", help="An unknown customer: ends in the DLQ")
    ] = False,
) -> None:
    """Send one order through the API and print the answer."""
    client = Client(load())
    body = order(
        order_id or f"order-{uuid.uuid4().hex[:12]}",
        POISON_CUSTOMER_ID if poison else customer_id,
        amount,
        note,
    )
    result = client.post(body)
    client.close()
    print(f"{result.status} {result.error or json.dumps({'order_id': result.order_id})}")
    if not result.accepted:
        raise typer.Exit(1)


@app.command("load")
def load_traffic(
    count: Annotated[int, typer.Option(min=1, max=1_000_000, help="Orders to send")] = 100,
    rate: Annotated[float, typer.Option(min=0.1, max=5000, help="Orders per second")] = 50,
    max_seconds: Annotated[float | None, typer.Option(min=1, help="Stop after this long")] = None,
) -> None:
    """Send COUNT orders at RATE per second (bounded); print accepted and rejected counts."""
    state = load()
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("orders", total=count)
        ledger = send_orders(
            state, count, rate, max_seconds=max_seconds, progress=lambda _: progress.advance(task)
        )
    statuses = Counter(sent.status for sent in ledger)
    accepted = sum(sent.accepted for sent in ledger)
    console.print(
        f"sent {len(ledger)}: accepted {accepted}, rejected {len(ledger) - accepted}"
        + (f"  (by status: {dict(statuses)})" if len(statuses) > 1 else "")
    )


customer_app = typer.Typer(
    help="The customers table (the poison order's fix).", no_args_is_help=True
)


app.add_typer(customer_app, name="customer")


@customer_app.command("add")
def customer_add(
    customer_id: int, name: Annotated[str, typer.Option()] = "added in the workshop"
) -> None:
    """Add a customer, so orders waiting for it (in the DLQ) can commit after a redrive."""
    database.add_customer(load(), customer_id, name)
    console.print(f"customer {customer_id} added")


traffic_app = typer.Typer(
    help="Background traffic that keeps flowing until stopped (bounded in time).",
    no_args_is_help=True,
)


app.add_typer(traffic_app, name="traffic")


@traffic_app.command("start")
def traffic_start(
    rate: Annotated[float, typer.Option(min=0.1, max=traffic.MAX_RATE, help="Orders/s")] = 20,
    max_seconds: Annotated[
        float, typer.Option(min=1, max=traffic.MAX_SECONDS, help="Stop after this long")
    ] = 600,
) -> None:
    """Send orders at RATE per second in the background, until `traffic stop` or MAX_SECONDS."""
    pid = traffic.start(load(), rate, max_seconds)
    console.print(f"traffic at {rate:g}/s for at most {max_seconds:g} s (pid {pid})")


@traffic_app.command("stop")
def traffic_stop() -> None:
    """Stop the background traffic and print what it sent."""
    state = load()
    stopped = traffic.stop(state)
    report = traffic.stats(state)
    if not stopped or report is None:
        console.print("no traffic running")
        return
    errors = sum(report["errors"].values())
    console.print(
        f"traffic stopped: sent {report['sent']}, accepted {report['accepted']}, errors {errors}"
        + (f" (by kind: {report['errors']})" if errors else "")
    )
