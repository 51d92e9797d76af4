"""A failover asked for (`sandbox failover`, a drill, the dashboard), the way Aurora's
``failover-db-cluster`` does one: checks first, then the cluster's own steps.

crash       the writer dies (SIGKILL); the proxy holds new requests (PAUSE) while in-flight work
            fails; the reader is promoted, the proxy repointed and resumed.
switchover  planned: the proxy pauses first, the writer stops cleanly, the reader catches up and is
            promoted. No acknowledged write is lost and no client sees an error.
hang        the writer freezes (SIGSTOP) for the outage, is then fenced (SIGKILL) and replaced.

The steps themselves (the cluster lock, fencing, promotion, the rejoin) are
`sandbox.standins.aurora.cluster`'s, which the control plane runs too when it fails over unasked.
"""

from __future__ import annotations

from sandbox.platform.hints import command as hint
from sandbox.platform.state import StackState
from sandbox.spec.choices import FAILOVER_MODES, FailoverMode, words
from sandbox.standins import control_plane
from sandbox.standins.aurora import cluster, database
from sandbox.standins.aurora.cluster import Failover, Outage


class AlreadyFailedOver(RuntimeError):
    """The writer a command meant to fail over was replaced while it waited for the lock."""


def failover(
    state: StackState,
    mode: FailoverMode = "crash",
    outage: Outage = 0.0,
    rejoin: bool = True,
    hold: bool = True,
    lag: Outage = 0.0,
    *,
    expect: str | None = None,
    who: str = "sandbox failover",
) -> Failover:
    """Fail the writer over to the reader; returns when the new writer takes writes.

    Waits for a failover in progress first (`cluster.exclusive`). ``expect``: the writer the caller
    means; if the control plane replaced it meanwhile, `AlreadyFailedOver` says so and nothing
    else happens. A writer that is already dead or hung is no obstacle: the reader takes over
    (a switchover, which needs the writer, is refused then).

    An `Until` outage whose bound passes raises `cluster.OutageBoundPassed`, after the failover
    and the rejoin: the cluster is never left without a writer.

    ``lag`` (crash only): first, the reader stops receiving WAL for that long while the writer
    goes on, so the crash promotes a reader that is behind. With synchronous replication the
    writer's commits wait for it meanwhile and nothing acknowledged is lost; with asynchronous
    replication every commit of those seconds is.
    """
    if mode not in FAILOVER_MODES:
        raise ValueError(f"mode must be {words(FAILOVER_MODES)}")
    if lag and mode != "crash":
        raise ValueError("a lagging reader is for a crash: a switchover waits for the reader")
    with cluster.exclusive(state, who):
        if expect and state.writer.name != expect:
            raise AlreadyFailedOver(
                f"{expect} is no longer the writer: it was failed over to {state.writer.name} "
                f"(see `{hint('events')}`)"
            )
        old, new = state.writer.name, state.readers[0].name
        if database.answers(state, old):
            if not database.is_streaming(state, new):
                raise RuntimeError(
                    f"reader {new} is not streaming: it cannot take over (see status)"
                )
        elif mode == "switchover" or lag:
            raise RuntimeError(
                f"the writer {old} is down: a switchover (or a lag) needs it; "
                "`--mode crash` promotes the reader"
            )
        elif not database.in_recovery(state, new):
            raise RuntimeError(f"the writer {old} is down and reader {new} is not up to take over")
        elif (why := _may_lack_commits(state, old, new)) is not None:
            raise RuntimeError(why)
        elif mode == "hang":
            mode = "crash"  # nothing left to freeze
        return cluster.fail_over(state, mode, old, new, outage, rejoin, hold, lag)


def _may_lack_commits(state: StackState, old: str, new: str) -> str | None:
    """Why promoting ``new`` in place of the dead ``old`` could lose acknowledged commits, or
    None if it cannot: under sync replication, the control plane last saw ``new`` as the
    synchronous reader of ``old`` (its status file's ``eligible``)."""
    if state.replication != "sync":
        return None  # async: a drill counts what is lost, as it must
    said = control_plane.status(state) or {}
    if said.get("writer") == old and new in said.get("eligible", []):
        return None
    return (
        f"reader {new} was not last seen as {old}'s synchronous reader: promoting it could lose "
        f"acknowledged commits; `make up` restarts {old} in place on its own data instead"
    )


def failback(state: StackState) -> Failover | None:
    """Return to the original layout (n1 the writer) with a switchover, or, if the writer is
    down, by promoting n1; None if already there."""
    writer = state.writer.name
    if writer == "n1":
        return None
    mode: FailoverMode = "switchover" if database.answers(state, writer) else "crash"
    return failover(state, mode, expect=writer, who="sandbox failback")
