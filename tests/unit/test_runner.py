"""The SQS event source semantics of the local runner, with a fake queue."""

import pytest

from sandbox.spec.event_source import RunnerSettings
from sandbox.standins.aws_lambda.event import failed_ids, sqs_event
from sandbox.standins.aws_lambda.runner import receive_batch


def message(n):
    return {
        "MessageId": f"m{n}",
        "ReceiptHandle": f"r{n}",
        "Body": "{}",
        "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": "1"},
    }


class FakeQueue:
    """Hands out prepared receive results in order, recording each call."""

    def __init__(self, *results):
        self.results = list(results)
        self.calls = []

    def receive_message(self, **kwargs):
        self.calls.append(kwargs)
        return {"Messages": self.results.pop(0)} if self.results else {}


def test_the_event_has_lambdas_record_shape():
    record = sqs_event([message(1)], "arn:q", "us-east-1")["Records"][0]
    assert record["messageId"] == "m1" and record["receiptHandle"] == "r1"
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == "arn:q"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, {"m1", "m2", "m3"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"m1", "m2", "m3"}),
    ],
)
def test_partial_batch_failures(response, failed):
    assert failed_ids([message(1), message(2), message(3)], response) == failed


def test_no_window_means_one_receive_per_batch():
    queue = FakeQueue([message(1)], [message(2)])
    batch = receive_batch(queue, "url", RunnerSettings(batch_size=10, batching_window_seconds=0))
    assert [m["MessageId"] for m in batch] == ["m1"]
    assert len(queue.calls) == 1 and queue.calls[0]["WaitTimeSeconds"] > 0


def test_a_window_gathers_until_the_batch_is_full():
    queue = FakeQueue([message(1)], [message(2)], [message(3)], [message(4)])
    settings = RunnerSettings(batch_size=3, batching_window_seconds=5)
    batch = receive_batch(queue, "url", settings)
    assert [m["MessageId"] for m in batch] == ["m1", "m2", "m3"]
    assert [call["MaxNumberOfMessages"] for call in queue.calls] == [3, 2, 1]
    assert [call["WaitTimeSeconds"] for call in queue.calls][1:] == [0, 0]


def test_an_empty_poll_returns_an_empty_batch():
    assert receive_batch(FakeQueue(), "url", RunnerSettings()) == []
