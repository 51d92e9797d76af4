"""The API's own record of every order it acknowledged on the queued path (a 202).

SQS is durable; LocalStack, its stand-in, keeps queues in memory. If LocalStack dies, whatever
was queued in it (and parked in its DLQ) dies with it: the one fault the local stand-in cannot
survive. This record, one order id per line in ``<run dir>/acknowledged.log``, written by the
gateway after the producer's 202 and outside LocalStack, is how the sandbox says how many went
with it, exactly, instead of losing them silently.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.platform.state import StackState
from sandbox.standins.aurora import database


def path(run_dir: str) -> Path:
    return Path(run_dir, "acknowledged.log")


def record(run_dir: str, order_id: str) -> None:
    """Append one acknowledged order id: one write of one short line with O_APPEND, so the
    gateway's threads never interleave two."""
    fd = os.open(path(run_dir), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{order_id}\n".encode())
    finally:
        os.close(fd)


def acknowledged(state: StackState) -> set[str]:
    try:
        return set(path(state.run_dir).read_text().split())
    except FileNotFoundError:
        return set()


def not_committed(state: StackState) -> set[str]:
    """Acknowledged on the queued path and not in the orders table (read from the writer).

    While LocalStack runs, these are in the queue or the DLQ; once it has died, they are what
    died with it.
    """
    ids = acknowledged(state)
    with database.connect(state, state.writer.name) as conn:
        stored = conn.execute(
            "SELECT order_id FROM orders WHERE order_id = ANY(%s)", (list(ids),)
        ).fetchall()
    return ids - {row[0] for row in stored}


def lost_path(run_dir: str) -> Path:
    return Path(run_dir, "lost-with-localstack.log")


def settle_lost(state: StackState) -> set[str]:
    """After LocalStack died: the acknowledged orders that are not committed, which died with
    it. They are added to ``lost-with-localstack.log`` and the record starts afresh, so a later
    death counts only its own. Call it before LocalStack is back: no 202 can come meanwhile."""
    lost = not_committed(state)
    with lost_path(state.run_dir).open("a") as out:
        out.writelines(f"{order_id}\n" for order_id in sorted(lost))
    path(state.run_dir).unlink(missing_ok=True)
    return lost


def lost_so_far(run_dir: str) -> int:
    """How many acknowledged orders died with LocalStack in this stack's life."""
    try:
        return len(lost_path(run_dir).read_text().split())
    except FileNotFoundError:
        return 0
