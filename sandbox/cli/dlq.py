"""`sandbox dlq list`, `show`, `redrive`, `purge`: the dead-letter queue."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.table import Table

from sandbox import stack
from sandbox.cli.app import app, console
from sandbox.ops import dlq
from sandbox.platform.state import load
from sandbox.spec.errors import StackError

dlq_app = typer.Typer(help="Inspect, redrive or purge the dead-letter queue.", no_args_is_help=True)


app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list() -> None:
    """Messages in the DLQ: order id, receives, first received, last error."""
    parked = dlq.peek(load())
    table = Table(
        "message id",
        "order id",
        "receives",
        "first received",
        "last error",
        title=f"DLQ: {len(parked)} message(s)",
    )
    for p in parked:
        first = (
            time.strftime("%H:%M:%S", time.localtime(p.first_received)) if p.first_received else "-"
        )
        table.add_row(p.message_id, p.order_id, str(p.receives), first, p.last_error[:80])
    console.print(table)


@dlq_app.command("show")
def dlq_show(key: Annotated[str, typer.Argument(help="Message id or order id")]) -> None:
    """One DLQ message: body, attributes and the consumer's last error."""
    parked = dlq.show(load(), key)
    print(
        json.dumps(
            {
                "message_id": parked.message_id,
                "order_id": parked.order_id,
                "receives": parked.receives,
                "last_error": parked.last_error,
                "body": json.loads(parked.body),
                "attributes": parked.attributes,
            },
            indent=2,
        )
    )


@dlq_app.command("redrive")
def dlq_redrive(
    method: Annotated[str, typer.Option(help="auto, move-task or manual")] = "auto",
) -> None:
    """Send every DLQ message back to the queue (fix the cause first: `sandbox customer add`)."""
    moved, used = dlq.redrive(load(), method)  # type: ignore[arg-type]
    console.print(f"redrove {moved} message(s) ({used})")


@dlq_app.command("purge")
def dlq_purge(yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False) -> None:
    """Delete every DLQ message (asks first)."""
    state = load()
    count = stack.queued(state)[1]
    if not yes:
        if not sys.stdin.isatty():
            raise StackError(f"purge would delete {count} message(s): confirm with --yes")
        typer.confirm(f"Delete {count} message(s) from the DLQ for good?", abort=True)
    console.print(f"purged {dlq.purge(state)} message(s)")
