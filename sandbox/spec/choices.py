"""Every choice a user picks from by name, listed once: the CLI's options and their help, the
dashboard's select boxes, the drills and the checks that refuse anything else all read them."""

from __future__ import annotations

from typing import Literal, get_args

#: How a failover takes the writer away (`sandbox.ops.failover`): killed, stopped cleanly with
#: the proxy paused (planned), or frozen (SIGSTOP) until it is fenced.
FailoverMode = Literal["crash", "switchover", "hang"]
FAILOVER_MODES: tuple[str, ...] = get_args(FailoverMode)

#: How the writer acknowledges a commit: once the reader has applied it (Aurora-like), or at once.
Replication = Literal["sync", "async"]
REPLICATIONS: tuple[str, ...] = get_args(Replication)

#: Which write path a drill sends its traffic down: the queue, the direct write, or both.
WritePath = Literal["queue", "direct", "both"]
PATHS: tuple[str, ...] = get_args(WritePath)

#: Where the stack's servers run (`sandbox.platform.runtime`): processes on loopback, or the
#: Compose profile's containers.
RuntimeName = Literal["native", "compose"]
RUNTIMES: tuple[str, ...] = get_args(RuntimeName)

#: The queue's kind (`sandbox.spec.queue.QueueSettings.type`).
QueueType = Literal["fifo", "standard"]
QUEUE_TYPES: tuple[str, ...] = get_args(QueueType)

#: A drill's fault (`sandbox.drills.drill`).
Fault = Literal[
    # announced: the sandbox does them through its own failover and fault code
    "none",
    "crash",
    "switchover",
    "hang",
    "lock-stall",
    "long-outage",
    "proxy-restart",
    "consumer-crash",
    "lagging-crash",
    "secret-rotated",
    # unannounced: a signal to a process, and the control plane has to notice
    "writer-killed",
    "writer-frozen",
    "reader-killed",
    "proxy-killed",
    "consumer-killed",
    "control-plane-killed",
    "api-killed",
    "localstack-killed",
    "dashboard-killed",
    "keeper-killed",
    # unannounced, Compose only: a server cut off the network while it runs
    "writer-partitioned",
    "reader-partitioned",
]
FAULTS: tuple[str, ...] = get_args(Fault)


def words(choices: tuple[str, ...]) -> str:
    """``("a", "b", "c")`` as "a, b or c", for help texts and refusals."""
    return ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
