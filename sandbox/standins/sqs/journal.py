"""The SQS stand-in's durability: every message on disk before its send returns.

SQS stores a message on several hosts before `SendMessage` answers, so an acknowledged message
survives whatever fails. LocalStack, the stand-in, keeps its queues in memory (persistence is a
paid feature), so this module gives it what SQS has: a write-ahead journal. A process that sends
through a journalled client (`install`: the API gateway, for the producer function) appends the
whole message (queue, body, group id, deduplication id) to ``<run dir>/sqs/journal.jsonl`` and
flushes it to stable storage *before* the request leaves; if that fails, the send raises and no
202 is ever answered for it.

When LocalStack comes back after dying, `restore` (`sandbox.standins.localstack.provision`)
puts every journalled message that is not committed back where it was: into the queue, or into
the DLQ if the consumer had spent its receives on it (parked, or on its way there). A message
journalled whose send then failed is restored too: its client got an error and retries it with
the same order id, and the consumer's insert is idempotent, so it commits once either way.

Each record starts on a line of its own (it is written after a newline, in one write whose
length is checked), so a record cut short by a crash mid-write costs that record alone. The
journal is compacted under an exclusive lock (committed messages dropped: by the control plane
as it grows, and by every restore); appends take the lock shared for their write, so none is
lost to a rewrite (a thread keeps its journal open between appends, and opens the new one when
it finds a rewrite has replaced it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

#: The lines that are not messages: a DLQ redrive (parked messages went back to the queue) and
#: a DLQ purge (parked messages were thrown away on purpose); only the latest of each counts.
MARKS = ("redriven", "purged")


def directory(run_dir: str) -> Path:
    return Path(run_dir, "sqs")


def path(run_dir: str) -> Path:
    return directory(run_dir) / "journal.jsonl"


@contextlib.contextmanager
def locked(run_dir: str, exclusive: bool) -> Iterator[None]:
    """The journal's lock: appends hold it shared, a rewrite or a restore exclusively."""
    fd = _open_lock(run_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _open_lock(run_dir: str) -> int:
    lock = directory(run_dir) / "journal.lock"
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:  # the first lock of this run dir
        directory(run_dir).mkdir(mode=0o700, exist_ok=True)
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)


class _Open:
    """One thread's open lock file and journal of one run dir, kept between its appends (each
    system call of an append lets the gateway's other threads take the GIL: with them kept an
    append makes four, not eight). A thread's own: a flock belongs to an open file, so threads
    sharing one would release each other's. Closed when the thread ends."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.lock = _open_lock(run_dir)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_DSYNC  # each write is its flush
        try:
            self.journal = os.open(path(run_dir), flags, 0o600)
        except OSError:
            os.close(self.lock)
            raise
        weakref.finalize(self, _close, self.lock, self.journal)

    def replaced(self) -> bool:
        """A rewrite put a new journal in place of the one open here (or the run dir went)."""
        return os.fstat(self.journal).st_nlink == 0


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


_open = threading.local()
# A child process must not share its parent's open lock file: its unlock would be the parent's.
os.register_at_fork(after_in_child=lambda: _open.__dict__.pop("files", None))


def append(run_dir: str, entry: dict[str, Any], at: float | None = None) -> None:
    """One record, on a line of its own, in one write, on the disk before this returns; raises
    if any of it is missing (a short write: the disk is full)."""
    record = {"t": time.time() if at is None else at, **entry}
    data = ("\n" + json.dumps(record, separators=(",", ":"))).encode()
    files: _Open | None = getattr(_open, "files", None)
    if files is None or files.run_dir != run_dir:
        files = _open.files = _Open(run_dir)
    fcntl.flock(files.lock, fcntl.LOCK_SH)
    try:  # whatever raises (a signal's handler too), the lock is let go: it is kept open
        while files.replaced():  # open them again (the lock file too: the run dir may be new)
            fcntl.flock(files.lock, fcntl.LOCK_UN)
            files = _open.files = _Open(run_dir)
            fcntl.flock(files.lock, fcntl.LOCK_SH)
        if os.write(files.journal, data) != len(data):
            raise OSError(f"the SQS journal took part of a record ({path(run_dir)})")
    finally:
        fcntl.flock(files.lock, fcntl.LOCK_UN)


def mark(run_dir: str, what: str, at: float) -> None:
    """Note a redrive or a purge of the DLQ (one of `MARKS`) done at ``at`` (taken before it
    began, written once it is done), for a later restore."""
    if what not in MARKS:
        raise ValueError(f"a journal mark is one of {MARKS}")
    append(run_dir, {"mark": what}, at)


def forget(run_dir: str, orders: set[str], before: float) -> int:
    """Drop the messages of ``orders`` journalled before ``before``: seen in the DLQ just before
    a purge, they were thrown away on purpose (a purge mark alone cannot tell a message parked
    then from one still on its way there). Returns how many."""
    with locked(run_dir, exclusive=True):
        held = read(run_dir)
        keep = {k: e for k, e in held.messages.items() if not (k[0] in orders and e["t"] <= before)}
        if len(keep) < len(held.messages):
            rewrite(run_dir, Journal(keep, held.marks))
    return len(held.messages) - len(keep)


def install(run_dir: str) -> None:
    """Journal every `SendMessage` of the SQS clients this process makes from now on (from
    boto3's default session, as a Lambda function's module-level client is)."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    watch(boto3.DEFAULT_SESSION.events, run_dir)


def watch(emitter: Any, run_dir: str) -> None:
    """Journal every `SendMessage` through ``emitter`` (a session's or one client's events)."""

    def journal(params: dict[str, Any], **_: Any) -> None:
        append(
            run_dir,
            {
                "queue": params["QueueUrl"],
                "body": params["MessageBody"],
                "group": params.get("MessageGroupId"),
                "dedup": params.get("MessageDeduplicationId"),
            },
        )

    emitter.register("before-parameter-build.sqs.SendMessage", journal)


#: A message's key: its order id and its deduplication id (a retry of an order is one message;
#: a different order under a used id is another, which the consumer parks as a conflict).
Key = tuple[str, str]


@dataclass(frozen=True)
class Journal:
    """What the journal holds: each message by `Key` (its last send), and the marks."""

    messages: dict[Key, dict[str, Any]]
    marks: dict[str, float]


def read(run_dir: str) -> Journal:
    messages: dict[Key, dict[str, Any]] = {}
    marks: dict[str, float] = {}
    try:
        lines = path(run_dir).read_text().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:  # a blank line, or one cut short by a crash: its send never left
            continue
        if "mark" in entry:
            marks[entry["mark"]] = max(entry["t"], marks.get(entry["mark"], 0.0))
        else:
            messages[key(entry)] = entry
    return Journal(messages, marks)


def key(entry: dict[str, Any]) -> Key:
    dedup = entry.get("dedup") or hashlib.sha256(entry["body"].encode()).hexdigest()
    return order_id(entry), dedup


def order_id(entry: dict[str, Any]) -> str:
    """The order a message carries (its group id is the order id; else the body says)."""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return entry.get("group") or json.loads(entry["body"])["order_id"]
    return entry["body"]


def rewrite(run_dir: str, keep: Journal) -> None:
    """Replace the journal by ``keep``, atomically; call it holding the lock exclusively."""
    target = path(run_dir)
    tmp = target.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        for what, at in keep.marks.items():
            out.write("\n" + json.dumps({"t": at, "mark": what}))
        for entry in keep.messages.values():
            out.write("\n" + json.dumps(entry, separators=(",", ":")))
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(target)
    dir_fd = os.open(directory(run_dir), os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself on the disk
    finally:
        os.close(dir_fd)
