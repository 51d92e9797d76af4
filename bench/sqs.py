"""Raw-SQS baselines: the same LocalStack, a queue like the stack's, the producer's messages.

Each baseline gets a queue of its own (same type and attributes as the orders queue, another name),
so it never touches the stack's queue and needs no PurgeQueue (rate-limited to once a minute).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import boto3
from botocore.config import Config

from bench.loops import Worker
from sandbox.functions.orders import accepted, parse_order
from sandbox.ops.load import order
from sandbox.platform.state import StackState
from sandbox.standins import localstack
from sandbox.standins.aws_lambda.runner import delete, receive_batch
from sandbox.standins.sqs import depth, ensure_queues, journal


def create_queue(state: StackState, name: str) -> str:
    """A queue shaped like the stack's orders queue (and its DLQ); returns its URL."""
    settings = replace(state.queue, name=name)
    return ensure_queues(localstack.client(state, "sqs"), settings).url


def message(url: str, order_id: str) -> dict[str, Any]:
    """SendMessage arguments exactly as the producer function builds them, body and FIFO ids."""
    body = accepted(parse_order(json.dumps(order(order_id))), int(time.time() * 1000))
    fifo = {"MessageGroupId": order_id, "MessageDeduplicationId": order_id}
    return {"MessageBody": body.model_dump_json(), **(fifo if url.endswith(".fifo") else {})}


@contextmanager
def sender(sqs: Any, url: str, prefix: str) -> Iterator[Worker]:
    """A worker that sends one message per call through the client ``sqs`` (shared by the
    loop's threads, as the gateway's functions share theirs), as the producer does."""
    yield lambda index: bool(
        sqs.send_message(QueueUrl=url, **message(url, f"{prefix}-{index:06d}"))["MessageId"]
    )


def client(state: StackState, clients: int) -> Any:
    """A client of its own for ``clients`` threads: a connection each in its pool, as the
    gateway's functions' client has (boto3's default pool of 10 would make the threads beyond
    it open a new connection a send)."""
    return boto3.Session().client(
        "sqs",
        endpoint_url=state.aws_endpoint,
        region_name=state.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(max_pool_connections=clients),
    )


@contextmanager
def journalling_client(state: StackState, clients: int) -> Iterator[Any]:
    """`client`, journalling each send first, as the gateway's does
    (`sandbox.standins.sqs.journal`), into a journal of its own (not the stack's). Made before
    the loop that uses it: making a client takes a boto3 session's load of its models, CPU that
    a loop making one per thread spent in its own timed window."""
    sqs = client(state, clients)
    # Beside the stack's own journal (the same disk; /tmp may be a tmpfs, where a flush is free).
    with tempfile.TemporaryDirectory(prefix="bench-journal-", dir=state.run_dir) as directory:
        journal.watch(sqs.meta.events, directory)
        yield sqs


@contextmanager
def batch_sender(state: StackState, url: str, prefix: str, total: int) -> Iterator[Worker]:
    """A worker that sends the ``index``-th batch of ten of ``total`` messages (a fast fill)."""
    sqs = localstack.client(state, "sqs")

    def send(index: int) -> bool:
        ids = range(index * 10, min(total, index * 10 + 10))
        entries = [{"Id": str(i), **message(url, f"{prefix}-{i:06d}")} for i in ids]
        return not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")

    yield send


def queued(state: StackState, url: str) -> int:
    return depth(localstack.client(state, "sqs"), url).total


def receive_and_delete(
    state: StackState,
    url: str,
    total: int,
    threads: int,
    max_seconds: float,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[int, float]:
    """Empty ``url`` with the runner's own receive and delete calls, without invoking anything.

    Uses the runner's `receive_batch` and `delete` (`sandbox.standins.aws_lambda.runner`) with the
    stack's runner settings, on as many threads as the runner has instances, so the drain's ratio to
    this rate is exactly the cost of the function and the runner around those SQS calls. Returns
    (messages deleted, seconds from start to the last delete).
    """
    lock = threading.Lock()
    deleted = 0
    last_delete = started = time.monotonic()
    deadline = started + max_seconds

    def instance() -> None:
        nonlocal deleted, last_delete
        sqs = localstack.client(state, "sqs")
        while time.monotonic() < deadline:
            with lock:
                if deleted >= total:
                    return
            messages = receive_batch(sqs, url, state.runner)
            if not messages:
                continue
            delete(sqs, url, messages)
            with lock:
                deleted += len(messages)
                last_delete = time.monotonic()
            if on_batch:
                on_batch(len(messages))

    workers = [threading.Thread(target=instance, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return deleted, last_delete - started
