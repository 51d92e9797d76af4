"""`sandbox send`, `load`, `traffic`, `customer`: orders through the API, and the fix for the
poison one."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Annotated

import typer

from sandbox.cli.app import app, console, fill, interrupted
from sandbox.ops import traffic
from sandbox.ops.load import POISON_CUSTOMERS, Client, order, poison_customer, send_orders
from sandbox.platform.hints import command as hint
from sandbox.platform.state import load
from sandbox.spec.errors import StackError

BIGINT_MAX = 2**63 - 1  # the largest customer id the database and the API take
POISON_HELP = (
    f"An order for a new customer no one has added ({POISON_CUSTOMERS.start}-"
    f"{POISON_CUSTOMERS.stop - 1}): parked in the DLQ after maxReceiveCount receives, until "
    "`sandbox customer add` adds that customer (printed)"
)


@app.command()
def send(
    customer_id: Annotated[
        int | None,
        typer.Option(min=1, max=BIGINT_MAX, help="Customer (1-1000 exist)  [default: 1]"),
    ] = None,
    amount: Annotated[str, typer.Option(help="Amount, e.g. 12.50")] = "19.99",
    order_id: Annotated[str | None, typer.Option(help="Idempotency key (default: random)")] = None,
    note: Annotated[str, typer.Option(help="Free text, stored verbatim")] = "",
    poison: Annotated[bool, typer.Option("--poison", help=POISON_HELP)] = False,
) -> None:
    """Send one order through the API and print the answer."""
    if poison and customer_id is not None:
        raise typer.BadParameter("--poison picks a customer of its own: leave out --customer-id")
    state = load()
    customer = poison_customer() if poison else customer_id or 1
    client = Client(state)
    try:
        result = client.post(
            order(order_id or f"order-{uuid.uuid4().hex[:12]}", customer, amount, note)
        )
    finally:
        client.close()
    if result.status == 0:
        raise StackError(result.unanswered(state.api_url))
    # The queued path's 202, as the API gave it: the SQS message holds the order already.
    answer = {"order_id": result.order_id, "message_id": result.message_id}
    print(f"{result.status} {result.error or json.dumps(answer)}")
    if not result.accepted:
        raise typer.Exit(1)
    if poison:
        from sandbox.ops.dlq import fix_command

        said = (
            f"customer {customer} does not exist, so this order cannot commit: SQS parks it in "
            f"the DLQ after {state.queue.max_receive_count} receives."
        )
        print(fill(said))
        print(
            fill(f"fix: `{fix_command(customer)}`, then `{hint('dlq redrive')}` once it is parked")
        )


@app.command("load")
def load_traffic(
    count: Annotated[int, typer.Option(min=1, max=1_000_000, help="Orders to send")] = 100,
    rate: Annotated[float, typer.Option(min=0.1, max=5000, help="Orders per second")] = 50,
    max_seconds: Annotated[float | None, typer.Option(min=1, help="Stop after this long")] = None,
) -> None:
    """Send COUNT orders at RATE per second (bounded); print accepted and rejected counts."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    state = load()
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("orders", total=count)
        try:
            ledger = send_orders(
                state,
                count,
                rate,
                max_seconds=max_seconds,
                progress=lambda _: progress.advance(task),
            )
        except KeyboardInterrupt:
            answered = progress.tasks[0].completed
            raise interrupted(f"after {answered:.0f} of {count} orders were answered") from None
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
    customer_id: Annotated[
        int | None,
        typer.Argument(min=1, max=BIGINT_MAX, help="The customer (`send --poison` prints it)"),
    ] = None,
    parked: Annotated[
        bool,
        typer.Option(
            "--parked",
            help="Instead: every customer the orders in the DLQ (or failing in the queue) wait "
            "for, each named (the dashboard's fix)",
        ),
    ] = False,
    name: Annotated[str, typer.Option()] = "added in the workshop",
) -> None:
    """Add a customer, so orders waiting for it can commit: in the queue at their next receive,
    in the DLQ after `sandbox dlq redrive`. One that exists is left as it is, and says so (exit
    0: what the fix is for, the customer existing, holds; a script that applies it twice goes
    on)."""
    if (customer_id is None) != parked:
        raise typer.BadParameter("give a CUSTOMER_ID or --parked (one of the two)")
    # print, not the console: a line wider than the terminal is left whole, never broken
    # inside the command it names.
    state = load()
    if customer_id is not None:
        from sandbox.standins.aurora import database

        added = database.add_customer(state, customer_id, name)
        print(f"customer {customer_id} {'added' if added else 'exists already: nothing added'}")
    else:
        from sandbox.ops.dlq import fix_parked

        fixed = fix_parked(state, name)
        if not fixed:
            print(
                "nothing to add: no order in the DLQ or failing in the queue waits for a customer"
            )
            return
        for one in fixed:
            done = "added" if one.added else "exists already: nothing added"
            print(f"customer {one.customer_id} {done} ({', '.join(one.order_ids)} wait(s) for it)")
    print(f"Its parked orders commit after `{hint('dlq redrive')}` (queued ones on their own).")


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
