"""LocalStack came back empty: every acknowledged message that is not committed goes back.

A LocalStack that died and started again has no queues. `needed` tells it apart from one that
has been restored (the queue carries a tag the restore puts on last, so a restore cut short is
done again, whole); `restore` makes the queue and the DLQ, and puts back each message of the
journal (`journal`) that is not committed (its order in the writer's table, the same order: a
different one under a used id is a conflict the consumer parks):

- into the DLQ if the consumer's log says this send of it had its last receive
  (``maxReceiveCount``) after the DLQ's last redrive: it was parked, or on its way there (SQS
  moves a message on the receive after its last). If the DLQ was purged since it surely got
  there, it was thrown away on purpose and stays away;
- into the queue otherwise.

If the writer does not answer, every journalled message is put back: the consumer's insert is
idempotent, so one that had committed is ignored when it comes again. What a restore cannot
bring back is what SQS keeps beside a message: its receive count and its visibility timer start
again (a message restored to the queue has all its receives ahead of it), and its message id is
new. The journal is compacted on the way: committed messages leave it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from botocore.exceptions import ClientError

from sandbox.functions.orders import QueuedOrder
from sandbox.platform.state import StackState
from sandbox.standins.aurora import database
from sandbox.standins.aws_lambda.logs import failures, logged_at
from sandbox.standins.sqs import ensure_queues, journal

#: On the queue once its messages are back: a queue without it is new, or was cut short.
TAG = "sandbox:restored"
#: What SQS (and LocalStack) answer for a queue that is not there.
NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


@dataclass(frozen=True)
class Restored:
    """What one restore put back, and what it found had no need to be."""

    to_queue: int
    to_dlq: int
    committed: int  # journalled, and already in the writer's table
    purged: int  # parked, then purged on purpose

    def words(self) -> str:
        return (
            f"{self.to_queue} acknowledged order(s) restored to the queue, {self.to_dlq} to the "
            f"DLQ (parked, or on their way there); {self.committed} journalled were committed"
        )


def needed(sqs: Any, state: StackState) -> bool:
    """Whether the queue is missing, or not restored yet: LocalStack started empty."""
    if not state.queue_url:
        return True
    try:
        tags = sqs.list_queue_tags(QueueUrl=state.queue_url).get("Tags", {})
    except ClientError as error:
        if error.response["Error"]["Code"] not in NO_QUEUE:
            raise
        return True
    return tags.get(TAG) != "yes"


def restore(sqs: Any, state: StackState) -> Restored | None:
    """Make the queue and the DLQ and put the journal's messages back; None if the queue was
    there already. Appends wait meanwhile (the journal's lock); a send journalled just before
    may still land during the restore, and FIFO's deduplication (the same dedup id within 5
    minutes) drops the second copy (on a standard queue the idempotent insert makes it harmless).
    """
    with journal.locked(state.run_dir, exclusive=True):
        if not needed(sqs, state):
            return None
        held = journal.read(state.run_dir)
        done = _committed(state, held.messages)
        queues = ensure_queues(sqs, state.queue)
        state.queue_url, state.dlq_url = queues.url, queues.dlq_url
        pending = {key: entry for key, entry in held.messages.items() if key not in done}
        parked, purged = _parked(state, pending, held.marks)
        keep = {key: entry for key, entry in pending.items() if key not in purged}
        _send(sqs, queues.url, [entry for key, entry in keep.items() if key not in parked])
        _send(sqs, queues.dlq_url, [keep[key] for key in sorted(parked)])
        journal.rewrite(state.run_dir, journal.Journal(keep, held.marks))
        sqs.tag_queue(QueueUrl=queues.url, Tags={TAG: "yes"})
    return Restored(len(keep) - len(parked), len(parked), len(done), len(purged))


def compact(state: StackState) -> int:
    """Drop the committed messages from the journal (a restore then has less to read); returns
    how many (none if the writer does not answer).

    The journal is read and the writer asked without the lock, which every send waits for: while
    the writer is away nothing commits, the journal grows, and reading it under the lock held
    the API's sends back for as long as it took, every minute. Only the rewrite holds the lock,
    with what was appended meanwhile (a message committed stays committed)."""
    done = _committed(state, journal.read(state.run_dir).messages)
    if not done:
        return 0
    with journal.locked(state.run_dir, exclusive=True):
        held = journal.read(state.run_dir)
        keep = {key: e for key, e in held.messages.items() if key not in done}
        journal.rewrite(state.run_dir, journal.Journal(keep, held.marks))
    return len(held.messages) - len(keep)


def _committed(state: StackState, messages: dict[journal.Key, dict]) -> set[journal.Key]:
    """The messages whose order is in the writer's table, that very order; none if the writer
    does not answer within `database.LOOK_SECONDS` (a frozen one would hold the journal's lock,
    and every send behind it, for good)."""
    if not messages:
        return set()
    ids = list({order_id for order_id, _ in messages})

    def stored(conn: psycopg.Connection) -> dict[str, dict]:
        query = "SELECT order_id, payload FROM orders WHERE order_id = ANY(%s)"
        return dict(conn.execute(query, (ids,)).fetchall())

    try:
        rows = database.quickly(state, state.writer.name, stored, state.db_name)
    except psycopg.Error:
        return set()
    return {key for key, entry in messages.items() if _same(entry, rows.get(key[0]))}


def _same(entry: dict[str, Any], payload: dict | None) -> bool:
    """Whether the committed ``payload`` is the order this message carries."""
    if payload is None:
        return False
    try:
        return QueuedOrder.model_validate_json(entry["body"], strict=False).same_as(payload)
    except ValueError:  # not an order: the consumer parks it, never commits it
        return False


def _parked(
    state: StackState, pending: dict[journal.Key, dict], marks: dict[str, float]
) -> tuple[set[journal.Key], set[journal.Key]]:
    """(parked or on their way to the DLQ, purged on purpose) among ``pending``, from the
    consumer's last failure of each order and the DLQ's last redrive and purge."""
    parked, purged = set(), set()
    known = failures(state)
    # From a message's last receive to its move into the DLQ: a visibility timeout, the next
    # receive's long poll, and LocalStack's lateness (about 1 s), with room to spare.
    moving = state.queue.visibility_timeout_seconds + 30.0
    for key, entry in pending.items():
        failure = known.get(key[0])
        if not failure or int(failure.get("receive_count", 0)) < state.queue.max_receive_count:
            continue
        at = logged_at(failure)
        if at < entry["t"]:
            continue  # a failure of an earlier send of the order: this one has not failed
        if at + moving < marks.get("purged", 0.0):
            purged.add(key)
        elif at >= marks.get("redriven", 0.0):
            parked.add(key)
    return parked, purged


def _send(sqs: Any, url: str, entries: list[dict[str, Any]]) -> None:
    """Each message sent again as it was sent (body, group id, deduplication id)."""
    for start in range(0, len(entries), 10):
        batch = []
        for index, entry in enumerate(entries[start : start + 10]):
            message = {"Id": str(index), "MessageBody": entry["body"]}
            if entry.get("group"):
                message["MessageGroupId"] = entry["group"]
            if entry.get("dedup"):
                message["MessageDeduplicationId"] = entry["dedup"]
            batch.append(message)
        failed = sqs.send_message_batch(QueueUrl=url, Entries=batch).get("Failed")
        if failed:
            raise RuntimeError(f"could not restore {len(failed)} message(s): {failed[0]}")
