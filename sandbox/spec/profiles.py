"""Consumer profiles: which write functions, event source mapping and table a new stack gets.

``sandbox`` is the sandbox's own (`sandbox.functions.consumer`: an idempotent insert, partial
batch failures, batches of 10, a secret and connection cached per instance). ``guidance-sample``
reproduces the guidance's published sample (`sandbox.functions.sample`), run by the same runner,
so a drill can put a number on what each of its choices costs (`sandbox up --consumer NAME`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings


@dataclass(frozen=True)
class Profile:
    what: str
    consumer: str  # "module:handler" of the consumer function
    direct: str | None  # the direct path's function, if not the API document's own
    unique_order_id: bool  # the table's order id a primary key (the idempotency key)
    batch_size: int | None = None  # these, if set, replace what `sandbox up` was given
    report_batch_item_failures: bool = True
    function_timeout_seconds: float | None = None
    visibility_timeout_seconds: int | None = None


PROFILES: dict[str, Profile] = {
    "sandbox": Profile(
        what="idempotent insert, partial batch failures, a cached secret",
        consumer="sandbox.functions.consumer:handler",
        direct=None,
        unique_order_id=True,
    ),
    "guidance-sample": Profile(
        what="the guidance's published sample: batch size 1 without ReportBatchItemFailures, "
        "function timeout = visibility timeout = 5 s, a plain INSERT into a table with no "
        "unique key, the secret fetched on every invocation",
        consumer="sandbox.functions.sample:consumer_handler",
        direct="sandbox.functions.sample:direct_handler",
        unique_order_id=False,
        batch_size=1,
        report_batch_item_failures=False,
        function_timeout_seconds=5.0,
        visibility_timeout_seconds=5,
    ),
}
NAMES = tuple(PROFILES)


def named(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"consumer must be one of {', '.join(NAMES)}, not {name!r}")
    return PROFILES[name]


def settings(
    name: str, queue: QueueSettings, runner: RunnerSettings
) -> tuple[QueueSettings, RunnerSettings]:
    """The queue and event source mapping a new stack with profile ``name`` gets: what it was
    given, with what the profile fixes put over it."""
    profile = named(name)
    runner = dataclasses.replace(
        runner,
        batch_size=profile.batch_size or runner.batch_size,
        report_batch_item_failures=profile.report_batch_item_failures,
        function_timeout_seconds=profile.function_timeout_seconds
        or runner.function_timeout_seconds,
    )
    queue = dataclasses.replace(
        queue,
        visibility_timeout_seconds=profile.visibility_timeout_seconds
        or queue.visibility_timeout_seconds,
    )
    return queue, runner
