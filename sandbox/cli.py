"""The `sandbox` command: what the Makefile, the workshop and the drills do, from a terminal."""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.exceptions import TyperException

from sandbox import identity, stack
from sandbox.load import POISON_CUSTOMER_ID, Client, order, send_orders
from sandbox.queue import QueueSettings
from sandbox.state import RunnerSettings, load

app = typer.Typer(
    help="Near-zero-RPO sandbox: SQS in front of Aurora, emulated on loopback.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()


@app.command()
def up(
    queue_type: Annotated[str, typer.Option(help="fifo or standard")] = "fifo",
    max_receive_count: Annotated[
        int, typer.Option(min=1, max=1000, help="Receives before the DLQ")
    ] = 25,
    visibility_timeout: Annotated[int, typer.Option(min=0, max=43200, help="Seconds")] = 5,
    replication: Annotated[str, typer.Option(help="sync (Aurora-like) or async")] = "sync",
    batch_size: Annotated[int, typer.Option(min=1, max=10)] = 10,
    concurrency: Annotated[int, typer.Option(min=1, max=16, help="Consumer instances")] = 2,
    function_timeout: Annotated[float, typer.Option(min=0.5, max=900, help="Seconds")] = 5.0,
    auto_ports: Annotated[
        bool, typer.Option(help="Pick free ports instead of the defaults")
    ] = False,
) -> None:
    """Start the whole stack (a no-op that prints status if it is already up)."""
    if queue_type not in ("fifo", "standard"):
        raise stack.StackError("--queue-type must be fifo or standard")
    if replication not in ("sync", "async"):
        raise stack.StackError("--replication must be sync or async")
    options = stack.Options(
        queue=QueueSettings(
            type=queue_type,
            max_receive_count=max_receive_count,  # type: ignore[arg-type]
            visibility_timeout_seconds=visibility_timeout,
        ),
        runner=RunnerSettings(
            batch_size=batch_size,
            concurrency=concurrency,
            function_timeout_seconds=function_timeout,
        ),
        replication=replication,
        auto_ports=auto_ports,
    )
    with console.status("starting the stack") as spinner:
        state, started = stack.up(options, report=lambda step: _step(spinner, step))
    if not started:
        console.print("[bold]The stack is already up.[/bold]")
        status()
        return
    console.print("[green]The stack is up.[/green]")
    console.print(f"  API (POST /orders)   {state.api_url}")
    console.print(f"  PgBouncer DSN        {state.proxy_dsn}")
    console.print(f"  AWS endpoint         {state.aws_endpoint}  (region {state.region})")
    console.print(f"  Queue                {state.queue_url}")
    console.print("  Token                `sandbox token` (or `.venv/bin/sandbox token`)")
    console.print("  Try                  `sandbox send` then `sandbox load --count 100 --rate 20`")


def _step(spinner, step: str) -> None:
    console.print(f"  [dim]-[/dim] {step}")
    spinner.update(step)


@app.command()
def down(
    force: Annotated[
        bool, typer.Option("--force", help="Stop even if messages would be lost")
    ] = False,
) -> None:
    """Stop everything and remove its data (refuses while messages are queued, unless --force)."""
    stack.down(force=force, report=lambda step: console.print(f"  [dim]-[/dim] {step}"))
    console.print("[green]The stack is down.[/green]")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable")] = False,
) -> None:
    """Health of each component, each node's role and replication, queue and DLQ depth."""
    from sandbox.status import collect

    report = collect(load())
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table("component", "health", "pid", "memory", "endpoint", title="components")
    for row in report["components"]:
        memory = f"{row['memory_mib']:.0f} MiB"
        table.add_row(
            row["name"], _ok(row["healthy"]), str(row["pid"] or "-"), memory, row["endpoint"]
        )
    total = sum(row["memory_mib"] for row in report["components"])
    table.caption = f"whole stack: {total:.0f} MiB (PSS)"
    console.print(table)
    nodes = Table("node", "role", "up", "port", "replication", "lag (bytes)", title="database")
    for name, node in report["nodes"].items():
        replication = (
            f"{node.get('state', '-')} / {node.get('sync', '-')}"
            if node["role"] == "reader"
            else report["replication"]
        )
        nodes.add_row(
            name,
            node["role"],
            _ok(node["up"]),
            str(node["port"]),
            replication,
            str(node.get("lag_bytes", "-")),
        )
    console.print(nodes)
    queues = report["queues"]
    if queues:
        queue, dlq = queues["queue"], queues["dlq"]
        console.print(
            f"queue: {queue['visible']} visible, {queue['in_flight']} in flight;"
            f"  DLQ: {dlq['visible']} visible, {dlq['in_flight']} in flight"
        )
    else:
        console.print("queue: [red]unreachable[/red]")


def _ok(flag: bool) -> str:
    return "[green]up[/green]" if flag else "[red]down[/red]"


@app.command()
def token(
    username: Annotated[str, typer.Option(help="Who signs in")] = "workshop",
    expires_in: Annotated[int, typer.Option(min=1, max=86400, help="Seconds")] = 3600,
) -> None:
    """Print an access token for the API (use as `Authorization: Bearer <token>`)."""
    print(identity.issue_token(load(), username=username, expires_in=expires_in))


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
    accepted = sum(n for s, n in statuses.items() if s in (201, 202))
    console.print(
        f"sent {len(ledger)}: accepted {accepted}, rejected {len(ledger) - accepted}"
        + (f"  (by status: {dict(statuses)})" if len(statuses) > 1 else "")
    )


def main() -> None:
    """Entry point: known failures become one line on stderr and exit code 1, never a traceback."""
    try:
        code = app(standalone_mode=False)  # returns the code of a typer.Exit
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except TyperException as error:  # bad usage: one line, not a box
        if type(error).__name__ != "NoArgsIsHelpError":  # (the help is already printed)
            print(
                f"error: {error.format_message()} (see `sandbox {_command()}--help`)",
                file=sys.stderr,
            )
        sys.exit(2)
    except (stack.StackError, FileNotFoundError, TimeoutError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:  # anything else: still one line, with where to look
        print(f"error: {type(error).__name__}: {error} (logs: .run/logs)", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def _command() -> str:
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
    return f"{command} " if command in typer.main.get_command(app).commands else ""


if __name__ == "__main__":
    main()
