"""The init hook we give LocalStack, run against stand-ins of the LocalStack classes it changes
(LocalStack itself lives in its own environment)."""

import sys
import threading
import types

import pytest

from sandbox.standins.localstack import INIT_HOOK

WINDOW = 300  # SQS's deduplication interval


class Sent:
    def __init__(self, priority):
        self.priority = priority


class Group:
    def __init__(self, messages=()):
        self.messages = list(messages)

    def empty(self):
        return not self.messages


class FifoQueue:
    """What the hook touches of LocalStack's FIFO queue; ``put`` records when it was called."""

    def __init__(self):
        self.mutex = threading.RLock()
        self.deduplication, self.message_groups, self.inflight_groups = {}, {}, set()

    def put(self, sent_at):
        self.deduplication[f"d{sent_at}"] = Sent(sent_at)
        return sent_at


class Dispatcher:
    def __init__(self):
        self.sent = []

    def dispatch_sqs_metric(self, *args, **kwargs):
        self.sent.append(args)


def set_close_connection_header(_chain, context, response):
    """LocalStack's: ``Connection: close`` on every answer unless keep-alive was asked for."""
    if context.request.headers.get("Connection", "").lower() != "keep-alive":
        response.headers.setdefault("Connection", "close")


@pytest.fixture
def localstack(monkeypatch):
    """Fake ``localstack.services.sqs`` modules, then the hook run as LocalStack runs it."""
    constants = types.SimpleNamespace(DEDUPLICATION_INTERVAL_IN_SEC=WINDOW)
    models = types.SimpleNamespace(FifoQueue=FifoQueue)
    provider = types.SimpleNamespace(CloudwatchDispatcher=Dispatcher)
    sqs = types.SimpleNamespace(constants=constants, models=models, provider=provider)
    legacy = types.SimpleNamespace(set_close_connection_header=set_close_connection_header)
    for name, module in {
        "localstack": types.SimpleNamespace(),
        "localstack.aws": types.SimpleNamespace(),
        "localstack.aws.handlers": types.SimpleNamespace(legacy=legacy),
        "localstack.aws.handlers.legacy": legacy,
        "localstack.services": types.SimpleNamespace(sqs=sqs),
        "localstack.services.sqs": sqs,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(
        set_close_connection_header, "__code__", set_close_connection_header.__code__
    )
    monkeypatch.setattr(FifoQueue, "put", FifoQueue.put)
    monkeypatch.setattr(Dispatcher, "dispatch_sqs_metric", Dispatcher.dispatch_sqs_metric)
    clock = types.SimpleNamespace(now=1000.0)
    monkeypatch.setattr("time.time", lambda: clock.now)
    exec(INIT_HOOK.read_text(), {})  # as LocalStack's init runner does
    return clock


def test_connections_are_kept_open_whatever_the_client_asked(localstack):
    chain = set_close_connection_header  # the function object the gateway's chain holds
    for asked in ({}, {"Connection": "close"}, {"Connection": "keep-alive"}):
        response = types.SimpleNamespace(headers={})
        context = types.SimpleNamespace(request=types.SimpleNamespace(headers=asked))
        chain(None, context, response)
        assert response.headers == {}, asked


def test_sqs_per_request_metrics_are_not_dispatched(localstack):
    dispatcher = Dispatcher()
    dispatcher.dispatch_sqs_metric("000000000000", "us-east-1", "q.fifo", "NumberOfMessagesSent")
    assert dispatcher.sent == []


def test_a_fifo_queue_forgets_only_what_sqs_no_longer_deduplicates(localstack):
    queue = FifoQueue()
    queue.put(localstack.now)  # the first put looks at once (nothing to forget yet)
    queue.message_groups = {
        "done": Group(),
        "waiting": Group(["a message"]),
        "in flight": Group(),
    }
    queue.inflight_groups.add(queue.message_groups["in flight"])
    queue.deduplication["recent"] = Sent(localstack.now + WINDOW - 1)
    localstack.now += WINDOW + 30
    assert queue.put(localstack.now) == localstack.now  # what LocalStack's put returned
    assert set(queue.deduplication) == {"recent", f"d{localstack.now}"}
    assert set(queue.message_groups) == {"waiting", "in flight"}


def test_a_fifo_queue_looks_at_most_once_a_minute(localstack):
    queue = FifoQueue()
    queue.put(localstack.now)
    queue.deduplication["old"] = Sent(localstack.now - WINDOW - 1)
    localstack.now += 59
    queue.put(localstack.now)
    assert "old" in queue.deduplication
    localstack.now += 1
    queue.put(localstack.now)
    assert "old" not in queue.deduplication
