"""The Lambda event source mapping stand-in: drives the consumer function from SQS.

The semantics are Lambda's for an SQS trigger: long polling, a batch size and batching window, a
concurrency of N function instances (one process each, so each keeps its own module state and DB
connection, as a Lambda instance does), a function timeout after which the instance is thrown
away, delete on success, and on failure leave the message for SQS to redeliver after its
visibility timeout. With ``ReportBatchItemFailures`` only the records the function names as failed
stay; if the function raises or times out the whole batch stays.

Two choices keep it at SQS's own pace and small (measured: `make bench`, README):

- Lambda's pollers are not its function instances: they receive the next batch while a function
  runs and delete a batch once it returned. So each instance's SQS calls run on two threads of
  its own beside the function (`Poller`): the function never waits for a delete, and seldom for a
  receive. A batch received ahead waits for the run before it, so it is received ahead only if
  the visibility timeout outlasts both runs (`receives_ahead`; AWS's 6x rule always does): else
  it would come back to the queue while still held, and be delivered twice.
- The function's init (importing its module) runs once, here, and the instances are forked from
  this process, as Lambda SnapStart resumes each instance from one initialised snapshot. They
  share its libraries' memory, and one that replaces a timed-out instance starts in milliseconds.
  Like SnapStart it asks the function to open connections in the handler, not at import: the
  sandbox's functions do (`sandbox.functions.database`).
"""

from __future__ import annotations

import ctypes
import functools
import gc
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session

from sandbox.platform import process
from sandbox.platform.state import StackState, load
from sandbox.spec import profiles
from sandbox.spec.event_source import RunnerSettings
from sandbox.standins import localstack
from sandbox.standins.aws_lambda.component import stop_seconds
from sandbox.standins.aws_lambda.event import failed_ids, sqs_event
from sandbox.standins.aws_lambda.invoke import FunctionTimeout, Handler, invoke, load_handler
from sandbox.standins.sqs import release

FUNCTION_NAME = "consumer"
Messages = list[dict[str, Any]]


def receive_batch(sqs: Any, url: str, settings: RunnerSettings) -> Messages:
    """Long-poll for the first messages, then gather more until the batch or window is full."""
    batch: Messages = []
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


def delete(sqs: Any, url: str, messages: Messages) -> None:
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


class Poller:
    """One instance's SQS side: a receive and a delete may run at once, beside the function."""

    def __init__(self, sqs: Any, url: str, settings: RunnerSettings) -> None:
        self.sqs, self.url, self.settings = sqs, url, settings
        self.calls = ThreadPoolExecutor(max_workers=2, thread_name_prefix="poller")

    def receive(self) -> Future[Messages]:
        return self.calls.submit(receive_batch, self.sqs, self.url, self.settings)

    def delete(self, messages: Messages) -> None:
        """Delete in the background; a failure is logged, and SQS redelivers the messages."""
        if messages:
            self.calls.submit(self._logged, delete, messages)

    def release(self, batch: Future[Messages] | None) -> None:
        """A batch received ahead and never to be invoked here, back to the queue."""
        if batch is not None:
            self._logged(release, received(batch))

    def close(self) -> None:
        self.calls.shutdown(wait=True)  # the deletes in flight finish first

    def _logged(self, call: Any, messages: Messages) -> None:
        try:
            call(self.sqs, self.url, messages)
        except Exception as error:
            emit(f"{call.__name__} failed", error=str(error))


def receives_ahead(visibility_timeout: float, settings: RunnerSettings) -> bool:
    """Whether a batch may be received while the one before it runs: held for that run (at most
    a function timeout), then run itself, it must still be invisible when it is deleted (a
    second for the delete)."""
    return visibility_timeout >= 2 * settings.function_timeout_seconds + 1


def received(batch: Future[Messages]) -> Messages:
    """A receive's messages; none if the queue could not be reached (logged, with a pause)."""
    try:
        return batch.result()
    except Exception as error:
        emit("receive failed", error=str(error))
        time.sleep(1)
        return []


@dataclass(frozen=True)
class Function:
    """What an instance invokes, and the event source mapping around it."""

    handler: Handler
    queue_arn: str
    region: str
    settings: RunnerSettings
    receive_ahead: bool = True


def instance(state: StackState, function: Function, index: int) -> None:
    """One function instance (a forked process), serving until asked to stop or timed out."""
    _die_with_parent()
    stop = process.on_stop()  # the instance ends once it invoked what it holds
    sqs = localstack.client(state, "sqs")  # this process's own connections (`init` closed its)
    serve(function, Poller(sqs, state.queue_url, state.runner), stop, index)


def serve(function: Function, poller: Poller, stop: threading.Event, index: int) -> None:
    """Invoke batch after batch, the next one received meanwhile if it may be, until asked to stop
    (then the batch already received is invoked too), or until an invocation times out: then this
    instance is done, as Lambda discards a timed-out instance, and what it received ahead goes
    back."""
    ahead: Future[Messages] | None = poller.receive()
    try:
        while ahead is not None:
            messages = received(ahead)
            ahead = poller.receive() if function.receive_ahead and not stop.is_set() else None
            if messages and not run(function, messages, poller, index):
                break
            if ahead is None and not stop.is_set():
                ahead = poller.receive()
    finally:
        poller.release(ahead)
        poller.close()


def run(function: Function, messages: Messages, poller: Poller, index: int) -> bool:
    """Invoke the function on one batch, settle it, log it; False if the function timed out."""
    settings = function.settings
    started = time.perf_counter()
    outcome, response = "ok", None
    try:
        event = sqs_event(messages, function.queue_arn, function.region)
        response = invoke(function.handler, event, FUNCTION_NAME, settings.function_timeout_seconds)
    except FunctionTimeout:
        outcome = "timeout"
    except Exception as error:  # the whole batch failed (Powertools raises when all records do)
        outcome = f"error: {type(error).__name__}: {str(error)[:200]}"
    failed = (
        {m["MessageId"] for m in messages}
        if outcome != "ok"
        else failed_ids(messages, response, settings.report_batch_item_failures)
    )
    poller.delete([m for m in messages if m["MessageId"] not in failed])
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
    return outcome != "timeout"


def _die_with_parent() -> None:
    """If the runner is killed (even with SIGKILL) its instances go with it."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def init(state: StackState, stopping: threading.Event) -> Function | None:
    """The function's init, once for every instance: its environment, its module imported, and
    the queue's ARN read with the SQS client the instances use; None if asked to stop first."""
    # botocore parses its data files (endpoints.json, 1.2 MB; the service models) once per
    # session, and Powertools makes a session per provider: about 10 MiB and 50 ms of CPU in
    # each instance's first invocation. One loader for every session shares them instead, as
    # clients of one session already do; they are only ever read.
    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)
    os.environ.update(state.function_env())
    handler = load_handler(profiles.named(state.consumer).consumer)
    sqs = localstack.client(state, "sqs")
    while not stopping.is_set():
        try:
            attributes = sqs.get_queue_attributes(
                QueueUrl=state.queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]
        except Exception as error:  # LocalStack is (re)starting: the instances need the queue
            emit("queue unreachable", error=str(error))
            stopping.wait(1)
            continue
        # Its first request done here, what the client built for it is shared with every
        # instance; its connection is not (each instance opens its own).
        sqs.close()
        # What was loaded so far stays put: a collection in an instance does not touch (and so
        # copy) the pages it shares with this process.
        gc.freeze()
        ahead = receives_ahead(state.queue.visibility_timeout_seconds, state.runner)
        return Function(handler, attributes["QueueArn"], state.region, state.runner, ahead)
    return None


def supervise(state: StackState) -> None:
    """Keep ``concurrency`` instances running until SIGTERM, then let each finish its batch."""
    stopping = process.on_stop()
    function = init(state, stopping)
    if function is None:
        return  # asked to stop before the queue answered
    context = multiprocessing.get_context("fork")
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
                workers[index] = context.Process(target=instance, args=(state, function, index))
                workers[index].start()
                started[index] = time.monotonic()
        stopping.wait(0.2)
    for worker in workers.values():
        if worker.pid:
            os.kill(worker.pid, signal.SIGTERM)
    for worker in workers.values():
        worker.join(timeout=stop_seconds(state.runner))
    emit("runner stopped")


if __name__ == "__main__":
    supervise(load(Path(os.environ["SANDBOX_RUN_DIR"])))
