"""The queue definition that both the sandbox and the CDK app read."""

import json

from sandbox.spec.queue import QueueSettings


def test_defaults_are_the_guidance_settings_but_a_visibility_timeout_6x_the_function_timeout():
    settings = QueueSettings()
    attributes = settings.queue_attributes("arn:dlq")
    assert settings.queue_name == "orders.fifo" and settings.dlq_name == "orders-dlq.fifo"
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "true"
    assert attributes["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    assert attributes["VisibilityTimeout"] == "6"  # the guidance has 5: see `function_timeout_for`
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:dlq",
        "maxReceiveCount": 25,
    }
    assert settings.dlq_attributes()["FifoQueue"] == "true"


def test_a_standard_queue_has_no_fifo_attributes():
    settings = QueueSettings(type="standard", max_receive_count=3)
    attributes = settings.queue_attributes("arn:dlq")
    assert settings.queue_name == "orders" and settings.dlq_name == "orders-dlq"
    assert "FifoQueue" not in attributes and "FifoQueue" not in settings.dlq_attributes()
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 3
