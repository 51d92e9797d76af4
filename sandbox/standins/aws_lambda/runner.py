"""The Lambda event source mapping stand-in: drives the consumer function from SQS.

The semantics are Lambda's for an SQS trigger: long polling, a batch size and batching window, a
concurrency of N function instances (one process each, so each keeps its own DB connection, as a
Lambda instance does), a function timeout, delete on success, and on failure leave the message for
SQS to redeliver after its visibility timeout. With ``ReportBatchItemFailures`` only the records the
function names as failed stay; if the function raises or times out the whole batch stays.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from sandbox.platform import process
from sandbox.platform.state import StackState, load
from sandbox.spec import profiles
from sandbox.spec.event_source import RunnerSettings
from sandbox.standins import localstack
from sandbox.standins.aws_lambda.event import failed_ids, sqs_event
from sandbox.standins.aws_lambda.invoke import FunctionTimeout, invoke, load_handler

FUNCTION_NAME = "consumer"


def receive_batch(sqs: Any, url: str, settings: RunnerSettings) -> list[dict[str, Any]]:
    """Long-poll for the first messages, then gather more until the batch or window is full."""
    batch: list[dict[str, Any]] = []
    window_ends = None
    while len(batch) < settings.batch_size:
        wait = settings.wait_time_seconds if not batch else 0
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, settings.batch_size - len(batch)),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        batch.extend(got)
        if not batch:
            return batch
        window_ends = window_ends or time.monotonic() + settings.batching_window_seconds
        if not got or time.monotonic() >= window_ends:
            break
    return batch


def delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
        result = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        for failure in result.get("Failed", []):
            # The receipt expired (visibility timeout passed): SQS will redeliver it, and the
            # idempotent insert makes the second delivery harmless.
            emit(
                "delete failed",
                message_id=chunk[int(failure["Id"])]["MessageId"],
                reason=failure.get("Message"),
            )


def emit(message: str, **fields: Any) -> None:
    """One JSON log line, next to the function's own (CloudWatch Logs style)."""
    line = {"level": "INFO", "service": "runner", "message": message, "pid": os.getpid()}
    # One write per line: instances share the log file (O_APPEND), so lines never interleave.
    os.write(sys.stdout.fileno(), (json.dumps(line | fields) + "\n").encode())


class _Stop:
    requested = False


def worker(run_dir: str, index: int) -> None:
    """One function instance: poll, invoke, settle, until asked to stop."""
    _die_with_parent()
    state = load(Path(run_dir))
    os.environ.update(state.function_env())
    stop = _Stop()
    signal.signal(signal.SIGTERM, lambda *_: setattr(stop, "requested", True))
    signal.signal(signal.SIGINT, lambda *_: setattr(stop, "requested", True))
    sqs = localstack.client(state, "sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=state.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    # The cold start: module init runs once per instance.
    handler = load_handler(profiles.named(state.consumer).consumer)
    settings = state.runner
    while not stop.requested:
        try:
            messages = receive_batch(sqs, state.queue_url, settings)
        except Exception as error:  # the queue itself is unreachable: back off and poll again
            emit("receive failed", error=str(error))
            time.sleep(1)
            continue
        if not messages:
            continue
        started = time.perf_counter()
        outcome, response = "ok", None
        try:
            event = sqs_event(messages, queue_arn, state.region)
            response = invoke(handler, event, FUNCTION_NAME, settings.function_timeout_seconds)
        except FunctionTimeout:
            outcome = "timeout"
        except Exception as error:  # the whole batch failed (Powertools raises when all records do)
            outcome = f"error: {type(error).__name__}: {str(error)[:200]}"
        failed = (
            {m["MessageId"] for m in messages}
            if outcome != "ok"
            else failed_ids(messages, response, settings.report_batch_item_failures)
        )
        done = [m for m in messages if m["MessageId"] not in failed]
        try:
            delete(sqs, state.queue_url, done)
        except Exception as error:
            emit("delete failed", error=str(error))
        emit(
            "invocation",
            worker=index,
            outcome=outcome if outcome != "ok" or not failed else "partial",
            ms=round((time.perf_counter() - started) * 1000, 1),
            records=[
                {
                    "id": m["MessageId"],
                    "receive_count": int(m["Attributes"].get("ApproximateReceiveCount", 0)),
                    "failed": m["MessageId"] in failed,
                }
                for m in messages
            ],
        )
        if outcome == "timeout":
            return  # Lambda discards a timed-out instance; the supervisor starts a fresh one


def _die_with_parent() -> None:
    """If the runner is killed (even with SIGKILL) its instances go with it."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def supervise(state: StackState) -> None:
    """Keep ``concurrency`` instances running until SIGTERM, then let each finish its batch."""
    context = multiprocessing.get_context("spawn")
    stopping = process.on_stop()
    workers: dict[int, multiprocessing.process.BaseProcess] = {}
    emit("runner started", concurrency=state.runner.concurrency, batch_size=state.runner.batch_size)
    started: dict[int, float] = {}
    while not stopping.is_set():
        for index in range(state.runner.concurrency):
            # A new instance at most once a second per slot: one that dies at start (the queue
            # unreachable, say) must not turn into a fork loop.
            if (index not in workers or not workers[index].is_alive()) and (
                time.monotonic() - started.get(index, 0) > 1
            ):
                if index in workers:
                    emit("instance replaced", worker=index, exit_code=workers[index].exitcode)
                workers[index] = context.Process(target=worker, args=(state.run_dir, index))
                workers[index].start()
                started[index] = time.monotonic()
        stopping.wait(0.2)
    for instance in workers.values():
        if instance.pid:
            os.kill(instance.pid, signal.SIGTERM)
    for instance in workers.values():
        instance.join(timeout=state.runner.function_timeout_seconds + 5)
    emit("runner stopped")


if __name__ == "__main__":
    supervise(load(Path(os.environ["SANDBOX_RUN_DIR"])))
