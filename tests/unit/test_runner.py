"""The SQS event source semantics of the local runner, with a fake queue."""

import json
import threading
import time

import pytest

from sandbox.spec.event_source import RunnerSettings
from sandbox.standins.aws_lambda import runner
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


class FakeSqs(FakeQueue):
    """`FakeQueue` that also records what was deleted and what was given back."""

    def __init__(self, *results):
        super().__init__(*results)
        self.deleted, self.released = [], []

    def delete_message_batch(self, QueueUrl, Entries):
        self.deleted += [entry["ReceiptHandle"] for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}

    def change_message_visibility_batch(self, QueueUrl, Entries):
        self.released += [(entry["ReceiptHandle"], entry["VisibilityTimeout"]) for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}


def serve(queue, handler, settings=None, stop=None, ahead=True):
    """One instance's loop, in this process, until it ends by itself."""
    settings = settings or RunnerSettings(wait_time_seconds=0)
    function = runner.Function(handler, "arn:q", "us-east-1", settings, ahead)
    runner.serve(function, runner.Poller(queue, "url", settings), stop or threading.Event(), 0)


def test_each_batch_is_invoked_and_only_its_failed_records_stay(capfd):
    stop = threading.Event()
    invoked = []

    def handler(event, context):
        invoked.append([r["messageId"] for r in event["Records"]])
        if len(invoked) == 2:
            stop.set()
            return {"batchItemFailures": [{"itemIdentifier": "m3"}]}
        return {"batchItemFailures": []}

    queue = FakeSqs([message(1), message(2)], [message(3), message(4)])
    serve(queue, handler, stop=stop)
    assert invoked == [["m1", "m2"], ["m3", "m4"]]
    assert sorted(queue.deleted) == ["r1", "r2", "r4"]
    assert queue.released == []
    assert invocations(capfd) == [("ok", [False, False]), ("partial", [True, False])]


def test_a_stopping_instance_invokes_the_batch_it_already_received_then_ends():
    stop = threading.Event()
    invoked = []

    def handler(event, context):
        invoked.append([r["messageId"] for r in event["Records"]])
        stop.set()  # SIGTERM during the first invocation

    queue = FakeSqs([message(1)], [message(2)], [message(3)])
    serve(queue, handler, stop=stop)
    assert invoked == [["m1"], ["m2"]]  # the second batch was received while the first ran
    assert len(queue.calls) == 2  # and nothing after it: m3 stays in the queue
    assert sorted(queue.deleted) == ["r1", "r2"]


def test_a_timed_out_instance_ends_its_batch_stays_and_the_next_goes_back(capfd):
    invoked = []

    def handler(event, context):
        invoked.append([r["messageId"] for r in event["Records"]])
        time.sleep(600)  # the function timeout (a SIGALRM) ends it

    queue = FakeSqs([message(1)], [message(2)], [message(3)])
    serve(queue, handler, RunnerSettings(wait_time_seconds=0, function_timeout_seconds=0.2))
    assert invoked == [["m1"]]  # the instance is thrown away after its timeout
    assert queue.deleted == []  # m1 comes back after its visibility timeout
    assert queue.released == [("r2", 0)]  # received for it: visible again at once
    assert invocations(capfd) == [("timeout", [True])]


def test_a_function_that_raises_leaves_its_whole_batch(capfd):
    stop = threading.Event()

    def handler(event, context):
        stop.set()
        raise RuntimeError("database down")

    queue = FakeSqs([message(1), message(2)])
    serve(queue, handler, stop=stop)
    assert queue.deleted == [] and queue.released == []
    assert invocations(capfd) == [("error: RuntimeError: database down", [True, True])]


def invocations(capfd):
    """(outcome, failed per record) of each invocation the runner logged."""
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    return [
        (line["outcome"], [r["failed"] for r in line["records"]])
        for line in lines
        if line["message"] == "invocation"
    ]


@pytest.mark.parametrize(
    ("visibility", "function_timeout", "ahead"),
    [(6, 1, True), (3, 1, True), (2, 1, False), (2, 2, False), (5, 5, False)],
)
def test_a_batch_is_received_ahead_only_if_it_stays_invisible_through_two_runs(
    visibility, function_timeout, ahead
):
    settings = RunnerSettings(function_timeout_seconds=function_timeout)
    assert runner.receives_ahead(visibility, settings) is ahead


def test_without_receiving_ahead_a_stopping_instance_receives_nothing_more():
    stop = threading.Event()
    invoked = []

    def handler(event, context):
        invoked.append([r["messageId"] for r in event["Records"]])
        stop.set()

    queue = FakeSqs([message(1)], [message(2)])
    serve(queue, handler, stop=stop, ahead=False)
    assert invoked == [["m1"]] and len(queue.calls) == 1
    assert queue.deleted == ["r1"] and queue.released == []
