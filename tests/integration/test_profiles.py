"""The guidance's published sample beside the sandbox's own functions, on the same fault: a
lock that makes every commit slower than the consumer's timeout (`--fault lock-stall`)."""

from __future__ import annotations

import pytest

from sandbox import stack
from sandbox.drills import drill
from sandbox.ops.load import Client, order
from sandbox.ops.status import collect
from sandbox.spec import profiles
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings
from sandbox.standins.aurora import database


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A second stack whose consumer and direct path are the guidance's sample."""
    directory = tmp_path_factory.mktemp("sample")
    queue, runner = profiles.settings("guidance-sample", QueueSettings(), RunnerSettings())
    options = stack.Options(queue=queue, runner=runner, auto_ports=True, consumer="guidance-sample")
    state, _ = stack.up(options, report=lambda step: None, directory=directory)
    yield state
    stack.down(force=True, report=lambda step: None, directory=directory)


def test_the_sample_stack_has_the_samples_mapping_and_table(sample):
    assert collect(sample)["consumer"] == "guidance-sample"
    assert (sample.runner.batch_size, sample.runner.report_batch_item_failures) == (1, False)
    assert sample.runner.function_timeout_seconds == sample.queue.visibility_timeout_seconds == 5
    with database.connect(sample, sample.writer.name) as conn:
        keys = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'orders'::regclass "
            "AND contype IN ('p', 'u')"
        ).fetchone()[0]
    assert keys == 0, "the sample's table has no unique key"


def test_a_commit_slower_than_the_timeout_duplicates_on_the_sample_and_never_here(sample, live):
    theirs = drill.run(sample, "lock-stall", "queue", count=200, rate=20)
    ours = drill.run(live, "lock-stall", "queue", count=200, rate=20)
    (sampled,), (own,) = theirs.paths, ours.paths
    assert sampled.balanced and own.balanced
    assert (sampled.accepted, sampled.lost, own.accepted, own.lost) == (200, 0, 200, 0)
    assert sampled.duplicates > 0, "a redelivered message inserted a second row"
    assert sampled.rows_written > 200 and sampled.guidance_check  # its own check cannot see it
    assert own.duplicates == 0 and own.committed_once == 200


def test_the_samples_direct_path_answers_200_and_stores_the_order(sample):
    client = Client(sample)
    try:
        sent = client.post(order("sample-direct-1"), "/direct/orders")
    finally:
        client.close()
    assert sent.status == 200
    with database.connect(sample, sample.writer.name) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM orders WHERE order_id = 'sample-direct-1'"
        ).fetchone()[0]
    assert rows == 1
