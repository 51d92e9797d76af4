"""Two sets of timings, one rule: the local sandbox's, tuned for drills that finish in seconds, and
the deployed stack's (`aws/`), sized for a real Aurora failover.

Both sets are held to the same rule (`Timings.problems`, tested for each):

- the queue's visibility timeout is at least 6x the consumer function's timeout (AWS: "set the
  source queue's visibility timeout to at least six times the timeout that you configure on your
  function", so a batch Lambda retries after throttling is not redelivered while in flight);
- the retry budget, ``maxReceiveCount x visibility timeout``, covers `FAILOVER_MULTIPLE` times
  Aurora's documented failover time: a message caught in a failover at every receive still
  reaches the database, not the DLQ;
- the proxy gives up waiting for a database connection (RDS Proxy's ``ConnectionBorrowTimeout``)
  before Lambda gives up on the function, so a record held by a failover fails with an error the
  consumer logs and reports as a batch item failure, rather than every held invocation ending in
  a timeout that says nothing. (Each record waits on its own: ten held records still outlast the
  function, and the whole batch comes back, which the idempotent insert makes safe.)

The local values are the ones the local tests are tuned to and are not changed here:
`QueueSettings()` and `RunnerSettings()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import VISIBILITY_RATIO, QueueSettings

#: Aurora User Guide, "High availability for Amazon Aurora" (Fault tolerance for an Aurora DB
#: cluster): when the writer fails and a replica is promoted, "service is typically restored in
#: less than 60 seconds, and often less than 30 seconds". The rule takes the longer figure.
AURORA_FAILOVER_SECONDS = 60
#: The retry budget must cover at least this many documented failovers back to back (a failover
#: and the slow first minutes after it, or two failovers during one message's life).
FAILOVER_MULTIPLE = 2


@dataclass(frozen=True)
class Timings:
    """The queue, the consumer's timeout and the proxy's borrow timeout of one target."""

    what: str
    queue: QueueSettings
    function_timeout_seconds: float
    #: RDS Proxy's ``ConnectionBorrowTimeout``. None: the target's proxy has no borrow timeout the
    #: rule can hold below the function's (see `LOCAL`).
    proxy_borrow_timeout_seconds: int | None

    @property
    def retry_budget_seconds(self) -> int:
        """How long a message may keep failing before SQS moves it to the DLQ."""
        return self.queue.visibility_timeout_seconds * self.queue.max_receive_count

    def problems(self) -> list[str]:
        """Every way these timings break the rule, as sentences; empty when they keep it."""
        visibility = self.queue.visibility_timeout_seconds
        found = []
        if visibility < VISIBILITY_RATIO * self.function_timeout_seconds:
            found.append(
                f"{self.what}: visibility timeout {visibility} s is under {VISIBILITY_RATIO}x the "
                f"function timeout {self.function_timeout_seconds:g} s"
            )
        needed = FAILOVER_MULTIPLE * AURORA_FAILOVER_SECONDS
        if self.retry_budget_seconds < needed:
            found.append(
                f"{self.what}: retry budget {self.queue.max_receive_count} receives x {visibility}"
                f" s = {self.retry_budget_seconds} s is under {FAILOVER_MULTIPLE}x Aurora's "
                f"documented {AURORA_FAILOVER_SECONDS} s failover ({needed} s)"
            )
        borrow = self.proxy_borrow_timeout_seconds
        if borrow is not None and borrow >= self.function_timeout_seconds:
            found.append(
                f"{self.what}: proxy borrow timeout {borrow} s is not under the function timeout "
                f"{self.function_timeout_seconds:g} s"
            )
        return found


#: The local sandbox: a 6 s visibility timeout and a 1 s consumer (Lambda's shortest), so a drill
#: sees a failed batch come back within seconds; 25 receives x 6 s = 150 s of retries. The local
#: proxy (PgBouncer) holds a waiting client for up to 120 s (``query_wait_timeout``, tuned for the
#: direct path's drills), far past the 1 s function: there the runner's function timeout is what
#: ends a held invocation, and the borrow-timeout part of the rule has nothing to hold.
LOCAL = Timings(
    what="local",
    queue=QueueSettings(),
    function_timeout_seconds=RunnerSettings.function_timeout_seconds,
    proxy_borrow_timeout_seconds=None,
)

#: The deployed stack. A 10 s consumer has room for a cold start's Secrets Manager call, a TLS
#: connection through RDS Proxy (the functions' connect timeout is 5 s) and a batch of 10 inserts;
#: the 60 s visibility timeout is 6x that, and is also Aurora's documented failover time, so a batch
#: failed by a failover comes back once the new writer typically serves. 10 receives x 60 s = 600 s
#: (10 documented failovers) before the DLQ: a poison order reaches it, and its alarm, in 10
#: minutes rather than 25. The proxy lets a borrow wait 5 s, under the function's 10 s.
AWS = Timings(
    what="aws",
    queue=QueueSettings(visibility_timeout_seconds=60, max_receive_count=10),
    function_timeout_seconds=10,
    proxy_borrow_timeout_seconds=5,
)
