"""`sandbox failover`, `failback`, `replication`, `fault ...`: what a workshop does to the
database."""

from __future__ import annotations

from typing import Annotated

import typer

from sandbox.cli.app import UsageError, app, console, interrupted
from sandbox.ops import faults, traffic
from sandbox.platform.hints import command as hint
from sandbox.platform.state import load
from sandbox.spec.choices import (
    FAILOVER_MODES,
    REPLICATIONS,
    words,
)
from sandbox.spec.errors import StackError


@app.command("failover")
def failover_cmd(
    mode: Annotated[str, typer.Option(help=words(FAILOVER_MODES))] = "crash",
    outage: Annotated[
        float, typer.Option(min=0, max=600, help="Seconds unavailable before promotion")
    ] = 0.0,
    hold: Annotated[
        bool, typer.Option(help="The proxy holds requests meanwhile (like RDS Proxy), or not")
    ] = True,
    lag: Annotated[
        float,
        typer.Option(
            min=0,
            max=600,
            help="crash: the reader first stops receiving WAL for this long (async loses those "
            "seconds' commits)",
        ),
    ] = 0.0,
) -> None:
    """Fail the writer over to the reader; the old writer rejoins as the reader."""
    if mode not in FAILOVER_MODES:
        raise UsageError(f"--mode must be {words(FAILOVER_MODES)}")
    if lag and mode != "crash":
        raise UsageError("--lag is for --mode crash")
    from sandbox.ops import failover

    state = load()
    writer = state.writer.name
    try:
        with console.status(f"failing over ({mode})"):
            done = failover.failover(
                state,
                mode,  # type: ignore[arg-type]
                outage,
                hold=hold,
                lag=lag,
                expect=writer,
            )
    except failover.AlreadyFailedOver as already:
        console.print(f"nothing to do: {already}")
        return
    except KeyboardInterrupt:
        raise interrupted(f"during the failover ({mode}) of the writer {writer}") from None
    console.print(
        f"{done.old_writer} -> {done.new_writer}: writes back after {done.seconds:.2f} s; "
        f"{done.old_writer} is the reader now"
    )


@app.command()
def failback() -> None:
    """Return to the original layout (n1 writer, n2 reader): a switchover (if the writer is
    down, n1 is promoted)."""
    from sandbox.ops import failover

    try:
        done = failover.failback(load())
    except failover.AlreadyFailedOver as already:
        console.print(f"nothing to do: {already}")
        return
    console.print(
        "already n1 writer" if done is None else f"{done.old_writer} -> {done.new_writer}"
    )


@app.command()
def replication(mode: Annotated[str, typer.Argument(help="sync (Aurora-like) or async")]) -> None:
    """Switch between synchronous and asynchronous replication."""
    if mode not in REPLICATIONS:
        raise UsageError(f"MODE must be {words(REPLICATIONS)}")
    from sandbox.standins.aurora import cluster, database, events

    state = load()
    with cluster.exclusive(state, "sandbox replication"):  # never halfway through a failover
        database.set_replication(state, mode)
        state.save()
    events.record(state, "replication-changed", f"replication is {mode}")
    console.print(f"replication: {mode}")


fault_app = typer.Typer(
    help="Inject one fault (each is also a drill --fault).", no_args_is_help=True
)


app.add_typer(fault_app, name="fault")


@fault_app.command("hang")
def fault_hang(seconds: Annotated[float, typer.Option(min=0.1, max=600)] = 10.0) -> None:
    """Freeze the writer (SIGSTOP) for SECONDS, then SIGCONT; past the detection window the
    control plane fails it over."""
    state = load()
    with console.status(f"writer {state.writer.name} frozen for {seconds:g} s"):
        faults.hang(state, seconds)
    console.print(f"writer {state.writer.name} resumed")


@fault_app.command("lock-stall")
def fault_lock_stall(
    seconds: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            max=600,
            help="How long (default: until the consumer has timed out on an insert)",
        ),
    ] = None,
) -> None:
    """Every insert waits on a lock while the writer answers (a migration, a lock held too
    long): a commit slower than the consumer's timeout, which a plain insert turns into a
    duplicate."""
    state = load()
    if seconds is None and not traffic.running(state):
        raise StackError(
            "lock-stall lasts until the consumer times out on an insert, and nothing is being "
            f"written: start traffic first (`{hint('traffic start')}`), or give --seconds"
        )
    until = seconds if seconds is not None else faults.consumer_timed_out(state)
    with console.status(f"inserts on {state.writer.name} wait on a lock"):
        faults.lock_stall(state, until)
    console.print(f"lock on {state.writer.name} released")


def _unannounced(fault: str, what: str) -> None:
    def command() -> None:
        state = load()
        refused = faults.refusal(fault, state.runtime)
        if refused:  # a fault this stack cannot take: the command asked for, not the stack, fails
            raise UsageError(refused)
        name, pid = faults.unannounced(state, fault)
        console.print(
            f"{fault}: {name} (pid {pid}); watch `{hint('status')}` and `{hint('events')}`",
            soft_wrap=True,
        )

    how = "a cut in the network" if fault in faults.PARTITIONS else "a signal to all of it"
    command.__doc__ = (
        f"{what}. Unannounced: {how} and nothing else; the control plane must notice and repair it."
    )
    fault_app.command(fault)(command)


for _fault, _how in faults.UNANNOUNCED.items():
    _unannounced(_fault, _how.what)


@fault_app.command("proxy-restart")
def fault_proxy_restart() -> None:
    """Restart PgBouncer (clients reconnect; queued messages wait and retry)."""
    faults.proxy_restart(load())
    console.print("PgBouncer restarted")


@fault_app.command("consumer-crash")
def fault_consumer_crash() -> None:
    """Kill the consumer runner with SIGKILL mid-batch, then start it again."""
    faults.consumer_crash(load())
    console.print("consumer runner killed and restarted")


@fault_app.command("secret-rotated")
def fault_secret_rotated() -> None:
    """Rotate the application role's password as Secrets Manager does (database, secret, proxy),
    then drop the proxy's client connections: the functions log in again with the password they
    cached, are refused, and read the secret again."""
    state = load()
    faults.secret_rotated(state)
    console.print(
        f"password of {state.db_user} rotated in the database, the secret and the proxy; "
        f"the proxy's clients dropped: watch `{hint('status')}` and `{hint('events')}`",
        soft_wrap=True,
    )
