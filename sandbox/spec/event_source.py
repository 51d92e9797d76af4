"""The Lambda event source mapping that drives the consumer from the queue: its settings, shared
by the local runner (`sandbox.standins.aws_lambda.runner`) and the CDK app."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.spec.queue import QueueSettings, function_timeout_for


@dataclass
class RunnerSettings:
    """The SQS event source mapping of the consumer function."""

    batch_size: int = 10
    batching_window_seconds: float = 0.0
    concurrency: int = 2
    #: Derived from the default queue's visibility timeout (`function_timeout_for`: the 6x rule).
    function_timeout_seconds: float = float(
        function_timeout_for(QueueSettings.visibility_timeout_seconds)
    )
    wait_time_seconds: int = 2
    #: Lambda's ``ReportBatchItemFailures``: only the records the function names stay queued;
    #: without it a function that returns deleted the whole batch, one that raises kept it.
    report_batch_item_failures: bool = True
