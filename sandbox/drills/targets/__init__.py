"""Where a drill runs: the few steps that differ between the local sandbox and a deployed stack.

The drill (`sandbox.drills.drill`) owns everything that must not differ between the two: the traffic
ledger, how each write is classified, RPO, RTO, percentiles and the report. A target only answers
questions about its environment (where to send orders, what committed, how deep the queues are)
and injects faults. `local.LocalTarget` wraps the sandbox's own functions; `aws.AwsTarget` does
the same through AWS's APIs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sandbox.ops.load import Api


@dataclass(frozen=True)
class Commit:
    """One committed order id, as much as the target can see of it.

    The timestamps are optional because a deployed stack's reconcile function returns ids only;
    the drill leaves latency and RTO out rather than guess them.
    """

    rows: int = 1
    accepted_at: float | None = None  # when the API acknowledged it (epoch seconds)
    committed_at: float | None = None  # when it first committed


class Target(Protocol):
    """What the drill needs from an environment. Every method may block; none may guess."""

    @property
    def name(self) -> str:
        """Shown in the report: "local", or which stack in which region."""
        ...

    @property
    def paths(self) -> tuple[str, ...]:
        """Which write paths exist ("queue", "direct")."""
        ...

    @property
    def poll_seconds(self) -> float:
        """How often to poll while settling and sampling depth (a poll may be an API call)."""
        ...

    @property
    def quiet_seconds(self) -> float:
        """How long commits must stay unchanged, the queue empty, before the drill settles when
        some acknowledged orders have not committed (parked, or lost): then nothing positive
        can end the wait. When every one has committed, the drill settles at once."""
        ...

    @property
    def notes(self) -> tuple[str, ...]:
        """Caveats that belong in every report from this target."""
        ...

    @property
    def replication(self) -> str:
        """The database's replication, as the report names it."""
        ...

    def check(self, fault: str, outage: float | None) -> None:
        """Raise ValueError, before anything is sent, if this fault cannot happen here."""
        ...

    def api(self) -> Api:
        """Where to send orders, signed in."""
        ...

    def inject(
        self,
        fault: str,
        outage: float | None,
        prefix: str = "",
        begun: Callable[[], None] = lambda: None,
    ) -> tuple[float, float]:
        """Inject ``fault`` (never "none"); returns (when it was injected, when it recovered).

        ``prefix`` starts every order id of the drill (``{prefix}-{path}-...``): a fault that
        lasts until something has happened to the drill's own orders looks for them by it.
        ``begun()`` says the fault is in place: the drill holds the rest of its traffic until
        then (or until this returns)."""
        ...

    def depth(self) -> int:
        """Messages in the queue, visible or in flight."""
        ...

    def dlq_depth(self) -> int:
        """Messages in the DLQ, visible or in flight."""
        ...

    def committed(self, prefix: str) -> dict[str, Commit]:
        """Every committed order whose id starts with ``prefix``, read from the writer."""
        ...

    def parked(self) -> set[str]:
        """Order ids in the DLQ, leaving every message there."""
        ...

    def redrive(self) -> int:
        """Move the DLQ back to the queue; returns how many messages moved."""
        ...

    def events(self, since: float) -> list[dict[str, Any]]:
        """Cluster events since ``since`` (epoch seconds), oldest first, as
        `sandbox.standins.aurora.events` records them."""
        ...
