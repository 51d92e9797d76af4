"""The SQS stand-in's journal and what a restore makes of it, without LocalStack or a database:
which messages go back to the queue, which to the DLQ, which stay away."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from sandbox.spec.queue import QueueSettings
from sandbox.standins.sqs import journal, restore


def fake_state(run_dir: Path) -> SimpleNamespace:
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(
        run_dir=str(run_dir),
        queue=QueueSettings(max_receive_count=5),
        path=lambda *parts: Path(run_dir, *parts),
    )


def failed(state: SimpleNamespace, order_id: str, receive_count: int, at: str) -> None:
    """A line of the consumer's log as Powertools writes it."""
    line = {
        "message": "order failed",
        "timestamp": f"2026-12-07 {at},000+0000",
        "order_id": order_id,
        "error": "boom",
        "receive_count": receive_count,
    }
    with state.path("logs", "consumer.log").open("a") as log:
        log.write(json.dumps(line) + "\n")


def epoch(at: str) -> float:
    from datetime import datetime

    return datetime.strptime(f"2026-12-07 {at}+0000", "%Y-%m-%d %H:%M:%S%z").timestamp()


def test_a_send_is_on_disk_before_it_leaves_and_a_failed_write_stops_it(tmp_path):
    sqs = boto3.Session().client(
        "sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    journal.watch(sqs.meta.events, str(tmp_path))
    url = "http://localhost/queue/orders.fifo"
    with Stubber(sqs) as stub:
        stub.add_response("send_message", {"MessageId": "m1"})
        sqs.send_message(QueueUrl=url, MessageBody='{"order_id": "a"}', MessageGroupId="a")
    (entry,) = journal.read(str(tmp_path)).messages.values()
    assert (entry["queue"], entry["group"], entry["body"]) == (url, "a", '{"order_id": "a"}')
    journal.path(str(tmp_path)).unlink()
    journal.path(str(tmp_path)).mkdir()  # the write fails: the send must not happen
    with Stubber(sqs) as stub:
        stub.add_response("send_message", {"MessageId": "m2"})
        with pytest.raises(IsADirectoryError):
            sqs.send_message(QueueUrl=url, MessageBody='{"order_id": "b"}', MessageGroupId="b")
        with pytest.raises(AssertionError):  # its answer is still waiting: it never went
            stub.assert_no_pending_responses()


def test_a_record_cut_short_by_a_crash_costs_that_record_alone(tmp_path):
    run_dir = str(tmp_path)
    journal.append(run_dir, message("a"))
    with journal.path(run_dir).open("a") as out:
        out.write('\n{"t": 1, "queue": "q", "bo')  # the crash, mid-write
    journal.append(run_dir, message("b"))
    journal.append(run_dir, message("c"))
    assert [key[0] for key in journal.read(run_dir).messages] == ["a", "b", "c"]


def test_a_retry_is_one_message_and_another_order_under_its_id_another(tmp_path):
    run_dir = str(tmp_path)
    journal.append(run_dir, message("a", dedup="first"))
    journal.append(run_dir, message("a", dedup="first"))  # the client's retry
    journal.append(run_dir, message("a", dedup="other"))  # a different order, the same id
    assert sorted(journal.read(run_dir).messages) == [("a", "first"), ("a", "other")]


def message(order_id: str, dedup: str = "d", at: float | None = None) -> dict:
    body = json.dumps({"order_id": order_id})
    return {"queue": "q", "body": body, "group": order_id, "dedup": dedup} | (
        {"t": at} if at is not None else {}
    )


@pytest.mark.parametrize(
    ("receives", "marks", "where"),
    [
        (4, {}, "queue"),  # receives left: back in the queue
        (5, {}, "dlq"),  # its last receive: parked, or on its way there
        (5, {"redriven": "10:00:02"}, "queue"),  # parked, then redriven
        (5, {"purged": "10:05:00"}, "gone"),  # parked, then thrown away on purpose
        (5, {"purged": "10:00:05"}, "dlq"),  # a purge before it surely reached the DLQ
        (5, {"purged": "10:00:00", "redriven": "10:00:00"}, "dlq"),  # parked again since
    ],
)
def test_where_a_message_goes_back(tmp_path, receives, marks, where):
    state = fake_state(tmp_path)
    failed(state, "a", receives, "10:00:01")
    pending = {("a", "d"): message("a", at=epoch("09:59:00"))}
    parked, purged = restore._parked(state, pending, {k: epoch(v) for k, v in marks.items()})
    found = "dlq" if ("a", "d") in parked else "gone" if ("a", "d") in purged else "queue"
    assert found == where


def test_an_order_sent_again_after_its_failures_goes_back_to_the_queue(tmp_path):
    """Parked, purged, the customer fixed, the order sent again: this send never failed."""
    state = fake_state(tmp_path)
    failed(state, "a", 5, "10:00:01")
    pending = {("a", "d"): message("a", at=epoch("10:10:00"))}
    marks = {"purged": epoch("10:05:00")}
    assert restore._parked(state, pending, marks) == (set(), set())


def test_a_rewrite_keeps_the_marks_and_drops_what_it_is_told(tmp_path):
    run_dir = str(tmp_path)
    for key in ("a", "b"):
        journal.append(run_dir, message(key))
    journal.mark(run_dir, "redriven", 123.0)
    held = journal.read(run_dir)
    with journal.locked(run_dir, exclusive=True):
        journal.rewrite(
            run_dir, journal.Journal({("b", "d"): held.messages[("b", "d")]}, held.marks)
        )
    again = journal.read(run_dir)
    assert list(again.messages) == [("b", "d")] and again.marks == {"redriven": 123.0}


def test_what_a_purge_saw_in_the_dlq_is_forgotten_but_a_later_send_of_it_is_kept(tmp_path):
    run_dir = str(tmp_path)
    for order in ("parked", "queued"):
        journal.append(run_dir, message(order), at=100.0)
    journal.append(run_dir, message("parked", dedup="again"), at=200.0)  # sent after the purge
    assert journal.forget(run_dir, {"parked"}, before=150.0) == 1
    assert set(journal.read(run_dir).messages) == {("queued", "d"), ("parked", "again")}
    assert journal.forget(run_dir, {"gone"}, before=150.0) == 0


def test_a_compaction_drops_what_committed_and_keeps_what_was_sent_while_it_asked(
    tmp_path, monkeypatch
):
    """The writer is asked without the journal's lock: a send may land meanwhile, and stays."""
    state = fake_state(tmp_path)
    for order in ("committed", "pending"):
        journal.append(state.run_dir, message(order))

    def committed(_, messages):
        assert set(messages) == {("committed", "d"), ("pending", "d")}
        assert sends_go(state.run_dir), "a send waits while the writer is asked"
        journal.append(state.run_dir, message("sent meanwhile"))
        return {("committed", "d")}

    monkeypatch.setattr(restore, "_committed", committed)
    assert restore.compact(state) == 1
    assert set(journal.read(state.run_dir).messages) == {("pending", "d"), ("sent meanwhile", "d")}


def test_a_compaction_that_finds_nothing_committed_never_holds_the_sends_back(
    tmp_path, monkeypatch
):
    """The writer is away: nothing commits, the journal grows, and no send waits on it."""
    state = fake_state(tmp_path)
    journal.append(state.run_dir, message("pending"))
    monkeypatch.setattr(restore, "_committed", lambda *_: set())
    monkeypatch.setattr(journal, "locked", lambda *_, **__: pytest.fail("the lock was taken"))
    assert restore.compact(state) == 0
    assert set(journal.read(state.run_dir).messages) == {("pending", "d")}


def sends_go(run_dir: str) -> bool:
    """Whether an append could take the journal's lock now (asked without waiting for it)."""
    fd = os.open(journal.directory(run_dir) / "journal.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_no_append_is_lost_to_rewrites_while_threads_append(tmp_path):
    """Each thread keeps its journal open between appends: a rewrite puts a new journal in its
    place, which the next append must find (and the lock keeps the rewrite's read whole). Every
    thread appends before a rewrite and after it, and during more."""
    import threading

    run_dir = str(tmp_path)
    threads, each = 8, 60
    rewritten = threading.Barrier(threads + 1)

    def rewrite() -> None:
        with journal.locked(run_dir, exclusive=True):
            journal.rewrite(run_dir, journal.read(run_dir))  # keeps all: a compaction's shape

    def sender(n: int) -> None:
        for i in range(each):
            if i == each // 2:
                rewritten.wait()  # all have appended: the rewrite
                rewritten.wait()  # it is done
            journal.append(run_dir, message(f"t{n}-{i}"))

    senders = [threading.Thread(target=sender, args=(n,)) for n in range(threads)]
    for thread in senders:
        thread.start()
    rewritten.wait()
    rewrite()
    rewritten.wait()
    for _ in range(3):  # a few more, while they append (not in a loop: it starves the appends)
        rewrite()
    for thread in senders:
        thread.join()
    assert len(journal.read(run_dir).messages) == threads * each


def test_an_append_after_the_run_dirs_journal_is_removed_opens_and_locks_the_new_one(tmp_path):
    """`sandbox down` removes ``sqs/``; a thread that appended before opens the new files."""
    run_dir = str(tmp_path)
    journal.append(run_dir, message("before"))
    shutil.rmtree(journal.directory(run_dir))
    journal.append(run_dir, message("after"))
    assert set(journal.read(run_dir).messages) == {("after", "d")}
    lock = journal.directory(run_dir) / "journal.lock"
    assert os.fstat(journal._open.files.lock).st_ino == lock.stat().st_ino


def test_an_append_that_fails_lets_the_lock_go(tmp_path, monkeypatch):
    """Its files are kept open: a lock left taken would hold every rewrite back for good."""
    run_dir = str(tmp_path)
    journal.append(run_dir, message("a"))

    def fails(_):
        raise KeyboardInterrupt  # as a signal's handler may raise anywhere

    monkeypatch.setattr(journal._Open, "replaced", fails)
    with pytest.raises(KeyboardInterrupt):
        journal.append(run_dir, message("b"))
    fd = os.open(journal.directory(run_dir) / "journal.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the append kept it
    finally:
        os.close(fd)


# The child only exits: the other threads' locks it might inherit are never taken in it.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_opens_files_of_its_own(tmp_path):
    """A child sharing its parent's open lock file would unlock the parent's appends."""
    journal.append(str(tmp_path), message("parent"))
    child = os.fork()
    if child == 0:  # the child: exit 0 if it holds none of its parent's files
        os._exit(0 if getattr(journal._open, "files", None) is None else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
