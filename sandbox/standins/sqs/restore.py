"""LocalStack came back empty: every acknowledged message that is not committed goes back.

A LocalStack that died and started again has no queues. `needed` tells it apart from one that
has been restored (the queue carries a tag the restore puts on last, so a restore cut short is
done again, whole); `restore` makes the queue and the DLQ, and puts back each message of the
journal (`journal`) whose order is not in the writer's table:

- into the DLQ if the consumer's log says its last receive was its last (``maxReceiveCount``)
  after the DLQ's last redrive: it was parked, or on its way there (SQS moves a message on the
  receive after its last); a purge since then threw it away on purpose, and it stays away;
- into the queue otherwise.

What a restore cannot bring back is what SQS keeps beside a message: its receive count and its
visibility timer start again (a message restored to the queue has all its receives ahead of it),
and its message id is new. The journal is compacted on the way: committed messages leave it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

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
    there already. Sends wait meanwhile (the journal's lock), so none lands half-way. Raises
    if the writer does not answer: the queue is then not made, and the next call tries again.
    """
    with journal.locked(state.run_dir, exclusive=True):
        if not needed(sqs, state):
            return None
        held = journal.read(state.run_dir)
        committed = _committed(state, set(held.messages)) if held.messages else set()
        queues = ensure_queues(sqs, state.queue)
        state.queue_url, state.dlq_url = queues.url, queues.dlq_url
        pending = {key: entry for key, entry in held.messages.items() if key not in committed}
        parked, purged = _parked(state, set(pending), held.marks)
        keep = {key: entry for key, entry in pending.items() if key not in purged}
        _send(sqs, queues.url, [entry for key, entry in keep.items() if key not in parked])
        _send(sqs, queues.dlq_url, [keep[key] for key in sorted(parked)])
        journal.rewrite(state.run_dir, journal.Journal(keep, held.marks))
        sqs.tag_queue(QueueUrl=queues.url, Tags={TAG: "yes"})
    return Restored(len(keep) - len(parked), len(parked), len(committed), len(purged))


def compact(state: StackState) -> int:
    """Drop the committed messages from the journal (a restore then has less to read); returns
    how many. Raises if the writer does not answer."""
    with journal.locked(state.run_dir, exclusive=True):
        held = journal.read(state.run_dir)
        committed = _committed(state, set(held.messages))
        if committed:
            keep = {key: e for key, e in held.messages.items() if key not in committed}
            journal.rewrite(state.run_dir, journal.Journal(keep, held.marks))
    return len(committed)


def _committed(state: StackState, ids: set[str]) -> set[str]:
    """The orders of ``ids`` in the writer's table."""
    with database.connect(state, state.writer.name, connect_timeout=3) as conn:
        rows = conn.execute(
            "SELECT order_id FROM orders WHERE order_id = ANY(%s)", (list(ids),)
        ).fetchall()
    return {row[0] for row in rows}


def _parked(state: StackState, ids: set[str], marks: dict[str, float]) -> tuple[set, set]:
    """(parked or on their way to the DLQ, purged on purpose) among ``ids``, from the
    consumer's last failure of each and the DLQ's last redrive and purge."""
    parked, purged = set(), set()
    last = state.queue.max_receive_count
    for key, failure in failures(state).items():
        if key not in ids or int(failure.get("receive_count", 0)) < last:
            continue
        at = logged_at(failure)
        if at < marks.get("purged", 0.0):
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
