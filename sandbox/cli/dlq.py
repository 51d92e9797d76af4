"""`sandbox dlq list`, `show`, `redrive`, `purge`: the dead-letter queue.

`list` and `show` print one record per message, a field a line, wrapped at the terminal's width
between words only: an id is never cut, whatever the width, so it can be copied from any line.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from sandbox.cli.app import app, console, fill
from sandbox.platform.hints import command as hint
from sandbox.platform.state import StackState, load
from sandbox.spec.errors import StackError

if TYPE_CHECKING:
    from sandbox.ops.dlq import Failing, Parked

dlq_app = typer.Typer(help="Inspect, redrive or purge the dead-letter queue.", no_args_is_help=True)


app.add_typer(dlq_app, name="dlq")

LABEL = 14  # "  last error  ": the values start in one column


@dlq_app.command("list")
def dlq_list() -> None:
    """Messages in the DLQ (ids, receives, sent, last error, the fix), then the orders failing in
    the queue, their receive count climbing towards the DLQ."""
    from sandbox.ops import dlq

    state = load()
    parked = dlq.mark_fixed(state, dlq.peek(state))
    climbing = dlq.failing(state, parked)
    print(f"DLQ: {len(parked)} message(s)")
    for message in parked:
        print()
        _record(message.order_id, _parked_fields(state, message, detail=False))
    if climbing:
        print(f"\nFailing in the queue, not parked yet: {len(climbing)} order(s)")
        for order in climbing:
            print()
            _record(order.order_id, _failing_fields(state, order))


@dlq_app.command("show")
def dlq_show(
    key: Annotated[str, typer.Argument(help="Message id or order id, or a unique prefix of one")],
) -> None:
    """One DLQ message: what `list` says of it, then its body and SQS's attributes."""
    from sandbox.ops import dlq

    state = load()
    (parked,) = dlq.mark_fixed(state, [dlq.show(state, key)])
    _record(parked.order_id, _parked_fields(state, parked, detail=True))
    print("\nbody:")
    try:
        print(json.dumps(json.loads(parked.body), indent=2))
    except ValueError:  # not an order (sent to the DLQ by hand?): as it is
        print(parked.body)
    print("\nSQS's attributes:")
    print(json.dumps(parked.attributes, indent=2))


def _parked_fields(state: StackState, parked: Parked, *, detail: bool) -> list[tuple[str, str]]:
    """What `list` says of a parked message; ``detail`` (`show`): the date too, and what SQS's
    own receive count adds to the consumer's."""
    from sandbox.ops import dlq

    limit = state.queue.max_receive_count
    sent = _time(parked.sent, "%Y-%m-%d %H:%M:%S" if detail else "%H:%M:%S")
    fields = [("message id", parked.message_id), ("sent", sent)]
    if parked.last_failed is None:  # no failure of it in the consumer's log
        fields.append(("receives", "not in the consumer's log"))
    else:
        fields.append(
            (
                "receives",
                f"{parked.receives} before SQS parked it (maxReceiveCount {limit}), the last "
                f"at {_time(parked.last_failed, '%H:%M:%S')}",
            )
        )
    looks = parked.receives_in_dlq
    if looks is not None and detail:
        total = parked.attributes["ApproximateReceiveCount"]
        fields.append(
            (
                "in the DLQ",
                f"received {looks} time(s) since, by looks at the DLQ (each `dlq list`, `dlq "
                f"show` and dashboard listing receives it once); SQS's ApproximateReceiveCount "
                f"({total}) counts both",
            )
        )
    fields.append(("last error", parked.last_error or "-"))
    if parked.fixed:
        fields.append(
            ("fix", f"customer {parked.missing_customer} added since: `{hint('dlq redrive')}`")
        )
    elif parked.missing_customer is not None:
        fix = dlq.fix_command(parked.missing_customer)
        fields.append(("fix", f"`{fix}`, then `{hint('dlq redrive')}`"))
    return fields


def _failing_fields(state: StackState, order: Failing) -> list[tuple[str, str]]:
    from sandbox.ops import dlq

    limit = state.queue.max_receive_count
    at = _time(order.last_failed, "%H:%M:%S")
    receives = (
        f"{order.receives} of {limit} so far, the last at {at}"
        if order.receives < limit
        else f"{order.receives} of {limit}, the last at {at}: SQS parks it at its next receive"
    )
    fields = [("receives", receives), ("last error", order.last_error or "-")]
    if order.missing_customer is not None:
        fix = dlq.fix_command(order.missing_customer)
        fields.append(("fix", f"`{fix}` (it then commits at its next receive)"))
    return fields


def _record(title: str, fields: list[tuple[str, str]]) -> None:
    """A title line, then ``label  value`` lines, the values in one column."""
    print(title)
    for label, value in fields:
        print(fill(value, f"  {label:<{LABEL - 2}}", " " * LABEL))


def _time(epoch: float, clock: str) -> str:
    return time.strftime(clock, time.localtime(epoch))


@dlq_app.command("redrive")
def dlq_redrive(
    method: Annotated[str, typer.Option(help="auto, move-task or manual")] = "auto",
) -> None:
    """Send every DLQ message back to the queue (fix the cause first: the fix `dlq list` names)."""
    from sandbox.ops import dlq

    moved, used = dlq.redrive(load(), method)  # type: ignore[arg-type]
    console.print(f"redrove {moved} message(s) ({used})")


@dlq_app.command("purge")
def dlq_purge(yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False) -> None:
    """Delete every DLQ message (asks first)."""
    from sandbox import stack
    from sandbox.ops import dlq

    state = load()
    count = stack.queued(state)[1]
    if not yes:
        if not sys.stdin.isatty():
            raise StackError(f"purge would delete {count} message(s): confirm with --yes")
        typer.confirm(f"Delete {count} message(s) from the DLQ for good?", abort=True)
    console.print(f"purged {dlq.purge(state)} message(s)")
