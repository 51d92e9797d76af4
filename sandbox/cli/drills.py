"""`sandbox drill`, `demo`, `chaos`, `events`: the proof, counted, and what the cluster said
meanwhile."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated

import typer

from sandbox.cli.app import (
    Interrupted,
    RegionOption,
    StackOption,
    TargetOption,
    UsageError,
    app,
    check_target,
    console,
    interrupted,
    table,
)
from sandbox.drills import chaos as chaos_runs
from sandbox.drills import drill as drills
from sandbox.drills.targets.aws import DEFAULT_REGION, AwsTarget
from sandbox.ops.load import PATIENT, ClientPolicy
from sandbox.platform.hints import command as hint
from sandbox.platform.state import load
from sandbox.spec.choices import (
    FAULTS,
    PATHS,
    words,
)
from sandbox.standins.aurora import events


@app.command()
def drill(
    fault: Annotated[
        str,
        typer.Option(
            help=", ".join(FAULTS)
            + " (the last eight unannounced: a signal, or on Compose a cut in the network, that"
            " the control plane must notice)"
        ),
    ] = "crash",
    path: Annotated[str, typer.Option(help=words(PATHS))] = "both",
    count: Annotated[int, typer.Option(min=1, max=100_000, help="Orders per path")] = 1000,
    rate: Annotated[float, typer.Option(min=1, max=2000, help="Orders per second per path")] = 100,
    outage: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=600,
            help="Seconds: the outage, or lagging-crash's lag (default: per fault)",
        ),
    ] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the report here")] = None,
    redrive: Annotated[bool, typer.Option(help="Redrive the DLQ before reconciling")] = True,
    client_timeout: Annotated[
        float,
        typer.Option(
            min=0.1, max=300, help="Seconds the client waits for each answer (the guidance's: 5)"
        ),
    ] = PATIENT.timeout,
    retries: Annotated[
        int,
        typer.Option(
            min=0,
            max=10,
            help="Times the client sends an order again after no answer or a 5xx (backoff "
            "0.5 s, doubling); 0: every failure is the user's",
        ),
    ] = PATIENT.retries,
    in_flight: Annotated[
        int,
        typer.Option(
            min=1, max=512, help="Requests the client lets wait for an answer at once (its users)"
        ),
    ] = PATIENT.in_flight,
    target: TargetOption = "local",
    stack_name: StackOption = None,
    region: RegionOption = None,
) -> None:
    """Traffic, a fault mid-stream, recovery, then an exact account of every write."""
    if fault not in FAULTS:
        raise UsageError(f"--fault must be one of {', '.join(FAULTS)}")
    if path not in PATHS:
        raise UsageError(f"--path must be {words(PATHS)}")
    check_target(target, stack_name, region)
    aws = AwsTarget(stack_name, region or DEFAULT_REGION) if stack_name else None
    state = None if aws else load()
    background = None if state is None else drills.background_rate(state)
    if background is not None:
        console.print(
            f"background traffic is running ({background:g} orders/s; "
            f"`{hint('traffic stop')}` stops it): the drill accounts for its own orders only, "
            "and its peak queue depth includes the traffic's",
            soft_wrap=True,
        )
    shown = _DrillProgress(fault, count)
    client = ClientPolicy(timeout=client_timeout, retries=retries, in_flight=in_flight)
    try:
        try:
            if aws:
                report = drills.run_on(
                    aws, fault, path, count, rate, outage, redrive, progress=shown, client=client
                )
            else:
                report = drills.run(
                    state,
                    fault,
                    path,
                    count,
                    rate,
                    outage,
                    redrive,
                    progress=shown,
                    client=client,
                    background=background,
                )
        finally:
            shown.stop()
    except ValueError as refused:
        if shown.began:
            raise
        raise UsageError(str(refused)) from None  # the options asked for what cannot be done
    except KeyboardInterrupt:
        raise interrupted(f"{shown.where()}; the drill's orders are not accounted for") from None
    _print_report(report)
    if json_file:
        json_file.write_text(report.to_json())
        console.print(f"report written to {json_file}")


#: A drill's steps after the traffic starts: the bar's label, and where a Ctrl-C found it.
_STEPS = {"fault": "fault: {}", "settling": "settling", "redriving": "redriving DLQ"}
_PHASES = {
    "fault": "during the fault ({})",
    "settling": "after the traffic, while the queue drained",
    "redriving": "while the DLQ was redriven",
}


class _DrillProgress:
    """The drill's progress bar, drawn from the drill's first step on: whatever the drill
    refuses (a fault this stack cannot take, a mix of options) it refuses before that, in one
    line with no bar. It also knows how far the drill got, for a Ctrl-C."""

    def __init__(self, fault: str, count: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.fault, self.count = fault, count
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.bar.add_task("sending", total=None)
        self.began = False
        self.phase = "while sending" if fault == "none" else "while sending, before the fault"

    def __call__(self, step: str, info: dict) -> None:
        if step == "paths":  # every check passed: the traffic starts
            self.bar.update(self.task, total=self.count * len(info["paths"]))
            self.bar.start()
            self.began = True
        elif step == "sent":
            self.bar.advance(self.task)
        elif step == "fault" and self.fault == "none":
            return
        else:
            self.phase = _PHASES.get(step, step).format(self.fault)
            self.bar.update(self.task, description=_STEPS.get(step, step).format(self.fault))

    def where(self) -> str:
        """How far the drill got: "after 340 of 2000 orders, during the fault (crash)"."""
        done = self.bar.tasks[0]
        return f"after {done.completed:.0f} of {done.total or self.count:.0f} orders, {self.phase}"

    def stop(self) -> None:
        if self.began:  # (a bar never drawn is not closed: that would print a blank line)
            self.bar.stop()


@app.command()
def demo(
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the report here")] = None,
) -> None:
    """The guidance's own demo at workshop length: 900 orders per path 0.05 s apart, a client
    that waits 5 s and never retries, the writer crashed and out for 20 s (`make demo`)."""
    d = drills.DEMO
    console.print(
        f"the guidance's demo: {d.count} orders per path {1 / d.rate:g} s apart, a client that "
        f"waits {d.client.timeout:g} s and never retries; a third of the way in the writer "
        f"crashes and is out for {d.outage:g} s before the reader is promoted",
        soft_wrap=True,
    )
    drill(
        fault=d.fault,
        path=d.path,
        count=d.count,
        rate=d.rate,
        outage=d.outage,
        json_file=json_file,
        redrive=True,
        client_timeout=d.client.timeout,
        retries=d.client.retries,
        in_flight=d.client.in_flight,
        target="local",
        stack_name=None,
        region=None,
    )


def _print_report(report: drills.DrillReport) -> None:
    shown = table(
        "",
        *(p.path for p in report.paths),
        title=f"drill{'' if report.target == 'local' else f' ({report.target})'}: "
        f"{report.fault}, {report.count} per path at {report.rate:g}/s, "
        f"{report.replication} replication; the client waits {report.client.timeout:g} s, "
        + (f"retries {report.client.retries}x" if report.client.retries else "never retries"),
    )
    rows = [
        ("requests sent", "sent"),
        ("acknowledged", "accepted"),
        ("client errors", "client_errors"),
        ("committed once", "committed_once"),
        ("committed twice+", "duplicates"),
        ("parked in DLQ", "in_dlq"),
        ("still queued", "queued"),
        ("LOST (acked, not stored)", "lost"),
        ("RPO seconds", "rpo_seconds"),
        ("errored but committed", "errored_but_committed"),
    ]
    for label, key in rows:
        shown.add_row(label, *(str(getattr(p, key)) for p in report.paths))
    shown.add_row(
        "error window (s after fault)",
        *(
            f"{p.errors_from_s} .. {p.errors_to_s}" if p.client_errors else "-"
            for p in report.paths
        ),
    )
    shown.add_row(
        "latency p50/p95/p99 ms",
        *(
            "/".join(str(p.latency_ms.get(k, "-")) for k in ("p50", "p95", "p99"))
            for p in report.paths
        ),
    )
    shown.add_row(
        "client wait p50/p95/p99 ms",
        *(
            "/".join(str(p.client_wait_ms.get(k, "-")) for k in ("p50", "p95", "p99"))
            for p in report.paths
        ),
    )
    if report.client.retries:
        shown.add_row("retried by the client", *(str(p.retried) for p in report.paths))
    shown.add_row(
        "every stored row a counted request",
        *("yes" if p.balanced else f"[red]NO: {p.unexpected} not[/red]" for p in report.paths),
    )
    shown.add_row(
        "guidance's check: rows + DLQ >= requests",
        *(
            f"{'passes' if p.guidance_check else 'FAILS'} ({p.rows_written} + {p.in_dlq})"
            for p in report.paths
        ),
    )
    console.print(shown)
    console.print(
        "[dim]The guidance's check counts rows, not orders: a duplicate row can hide a lost "
        "order, and it never says which one is missing. The account above matches every "
        "request by its order id.[/dim]",
        soft_wrap=True,
    )
    if report.detection_seconds is not None or report.failover_seconds is not None:
        console.print(
            f"detection (fault -> control plane noticed): {_seconds(report.detection_seconds)};"
            f"  failover (RDS-EVENT-0073 -> 0071): {_seconds(report.failover_seconds)}",
            soft_wrap=True,
        )
    console.print(
        f"RTO (fault -> first commit after recovery): {_seconds(report.rto_seconds)};  "
        f"peak queue depth{_with_traffic(report)}: {report.peak_queue_depth};  "
        f"drain: {_seconds(report.drain_seconds)};  redriven from DLQ: {report.redriven}",
        soft_wrap=True,
    )
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")


def _with_traffic(report: drills.DrillReport) -> str:
    """The peak's label over background traffic: the queue held the traffic's orders too."""
    return "" if report.background_rate is None else " (with the background traffic's)"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value} s"


@app.command("events")
def events_cmd() -> None:
    """Cluster events (failover started / completed ...), oldest first."""
    from rich.table import Column

    shown = table(
        # A time and a code are copied whole: the message wraps instead.
        Column("time", no_wrap=True, overflow="fold"),
        Column("code", no_wrap=True, overflow="fold"),
        "event",
        title="events",
    )
    for event in events.read(load()):
        shown.add_row(event["time"], event["code"], event["message"])
    console.print(shown)


@app.command()
def chaos(
    minutes: Annotated[
        float,
        typer.Option(min=0.1, max=chaos_runs.MAX_MINUTES, help="How long the traffic runs"),
    ] = 5.0,
    rate: Annotated[
        float, typer.Option(min=0.1, max=chaos_runs.MAX_RATE, help="Orders per second")
    ] = 20.0,
    interval: Annotated[
        float,
        typer.Option(
            min=chaos_runs.MIN_INTERVAL_SECONDS,
            max=chaos_runs.MAX_MINUTES * 60,
            help="Seconds between faults (each moved by up to a fifth of it; later if the "
            "stack is not whole again yet)",
        ),
    ] = 30.0,
    seed: Annotated[
        int | None,
        typer.Option(
            help="The same seed gives the same faults in the same order (default: "
            "a random one, printed)"
        ),
    ] = None,
    fault_kinds: Annotated[
        list[str] | None,
        typer.Option(
            "--faults",
            help="Kinds to draw from, comma-separated or repeated (default: every kind this "
            "stack can take)",
        ),
    ] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the report here")] = None,
) -> None:
    """Steady traffic through the API and an unannounced fault every --interval seconds; then
    an exact account of every order. Exit 1 on any loss or duplicate, or a stack not whole."""
    state = load()
    possible = chaos_runs.kinds_on(state.runtime)
    kinds = [k.strip() for value in fault_kinds or [] for k in value.split(",") if k.strip()]
    try:
        chosen = chaos_runs.check_kinds(kinds or possible, state.runtime)
        chaos_runs.check(minutes, rate, interval)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    seed = random.randrange(1_000_000) if seed is None else seed
    plan = chaos_runs.schedule(seed, minutes, interval, chosen)
    console.print(
        f"chaos: {minutes:g} min of orders at {rate:g}/s, {len(plan)} unannounced fault(s) about "
        f"{interval:g} s apart, seed {seed}, drawn from {', '.join(chosen)}",
        soft_wrap=True,
    )
    try:
        with console.status("checking that the stack is whole") as status:

            def on(step: str, info: dict) -> None:
                if step == "live":
                    status.update(_live_line(info))
                elif step == "fault":
                    row = info["row"]
                    console.print(
                        f"fault {row.index}/{info['of']} at {row.at_s:.1f} s: {row.fault} "
                        f"({', '.join(row.hit)})",
                        soft_wrap=True,
                    )
                elif step == "whole":
                    row = info["row"]
                    console.print(
                        f"  whole again after {row.whole_after_s} s"
                        if row.whole_after_s is not None
                        else f"  [red]not whole within {chaos_runs.WHOLE_BOUND_SECONDS:.0f} s[/red]"
                        f"{f': {row.note}' if row.note else ''}",
                        soft_wrap=True,
                    )
                elif step == "draining":
                    status.update(
                        "traffic stopped: waiting for the queue to drain, then accounting"
                    )

            report = chaos_runs.run(state, seed, minutes, rate, interval, chosen, progress=on)
    except chaos_runs.Interrupted as stopped:  # it says what it did and how the stack stands
        raise Interrupted(stopped.summary) from None
    _print_chaos(report)
    if json_file:
        json_file.write_text(report.to_json())
        console.print(f"report written to {json_file}")
    if not report.ok:
        console.print(f"[red]FAILED: {'; '.join(report.problems)}[/red]", soft_wrap=True)
        raise typer.Exit(1)


def _live_line(info: dict) -> str:
    """The one line a run keeps rewriting: the fault now, queue depth, acknowledged and
    committed so far."""
    now = info["fault"] or "no fault"
    depth = "?" if info["depth"] is None else info["depth"]
    committed = "?" if info["committed"] is None else info["committed"]
    return (
        f"{info['elapsed']:.0f} s - fault {info['faults_done']}/{info['faults_planned']}: {now}"
        f" - queue {depth} - acknowledged {info['acknowledged']}, committed {committed}"
        f", client errors {info['errors']}"
    )


def _print_chaos(report: chaos_runs.ChaosReport) -> None:
    shown = table(
        "#",
        "at (s)",
        "fault",
        "hit",
        "whole again after (s)",
        "client errors",
        "retried",
        title=f"chaos: seed {report.seed}, {report.minutes:g} min at {report.rate:g}/s, "
        f"{report.replication} replication, orders {report.prefix}-*",
    )
    for row in report.faults:
        shown.add_row(
            str(row.index),
            "-" if row.at_s is None else f"{row.at_s:.1f}",
            row.fault,
            ", ".join(row.hit),
            "[red]not whole[/red]" if row.whole_after_s is None else f"{row.whole_after_s:.1f}",
            str(row.client_errors),
            str(row.retried),
        )
    console.print(shown)
    for row in report.faults:
        if row.note:
            console.print(f"[dim]fault {row.index}: {row.note}[/dim]", soft_wrap=True)
    done = report.account
    if done is None:
        return
    counts = table("", "orders", title="every order, one by one (a retried order is one order)")
    for label, value in (
        ("sent", done.sent),
        ("acknowledged", done.acknowledged),
        ("committed once", done.committed_once),
        ("committed twice+", done.duplicates),
        ("in the DLQ", done.in_dlq),
        ("still queued", done.still_queued),
        ("LOST (acknowledged, not stored)", done.lost),
        ("client errors (after retries)", done.client_errors),
        ("errored but committed", done.errored_but_committed),
        ("retried by the client", done.retried),
        ("rows no request sent", done.unexpected),
    ):
        counts.add_row(label, str(value))
    console.print(counts)
    console.print(
        f"peak queue depth: {report.peak_queue_depth};  drained: "
        f"{'yes' if report.drained else 'no (bound passed)'};  whole at the end: "
        + ("yes" if report.whole_at_end else f"[red]no: {'; '.join(report.not_whole)}[/red]"),
        soft_wrap=True,
    )
