"""The consumer profiles: what `sandbox up --consumer NAME` gives a new stack."""

from __future__ import annotations

import pytest

from sandbox.functions import database, sample
from sandbox.spec import profiles
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings
from sandbox.standins.aws_lambda.event import failed_ids


def test_the_sandbox_profile_keeps_what_up_was_given():
    queue, runner = profiles.settings(
        "sandbox", QueueSettings(visibility_timeout_seconds=9), RunnerSettings(batch_size=7)
    )
    assert queue.visibility_timeout_seconds == 9
    assert (runner.batch_size, runner.report_batch_item_failures) == (7, True)


def test_the_guidance_sample_gets_the_samples_event_source_mapping():
    queue, runner = profiles.settings(
        "guidance-sample",
        QueueSettings(visibility_timeout_seconds=30, max_receive_count=25),
        RunnerSettings(batch_size=10, concurrency=3, function_timeout_seconds=1),
    )
    assert (runner.batch_size, runner.report_batch_item_failures) == (1, False)
    assert runner.function_timeout_seconds == queue.visibility_timeout_seconds == 5
    assert runner.concurrency == 3 and queue.max_receive_count == 25  # not the profile's


def test_an_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="consumer must be one of sandbox, guidance-sample"):
        profiles.named("fast")


def test_without_report_batch_item_failures_a_returning_function_finished_its_batch():
    messages = [{"MessageId": "m1"}, {"MessageId": "m2"}]
    named = {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert failed_ids(messages, named) == {"m2"}
    assert failed_ids(messages, named, report_batch_item_failures=False) == set()


def test_the_samples_insert_is_plain_and_the_sandboxs_is_idempotent():
    assert "ON CONFLICT" not in sample.INSERT.upper()
    assert "ON CONFLICT (order_id) DO NOTHING" in database.INSERT
    assert profiles.named("guidance-sample").unique_order_id is False
    assert profiles.named("sandbox").unique_order_id is True


def test_the_samples_failed_order_is_logged_as_sandbox_dlq_reads_it(capsys, tmp_path):
    from types import SimpleNamespace

    from sandbox.ops import dlq

    record = {"body": '{"order_id": "p-1"}', "attributes": {"ApproximateReceiveCount": "3"}}
    sample._failed(record, RuntimeError("insert or update violates foreign key constraint"))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "consumer.log").write_text(capsys.readouterr().out)
    state = SimpleNamespace(path=lambda *parts: tmp_path.joinpath(*parts))
    found = dlq.failures(state)  # type: ignore[arg-type]
    assert found["p-1"]["receive_count"] == 3
    assert found["p-1"]["error"].startswith("insert or update violates foreign key")
