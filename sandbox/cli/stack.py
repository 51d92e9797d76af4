"""`sandbox up`, `down`, `status`, `token`, `dashboard`: the stack itself."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import TYPE_CHECKING, Annotated

import typer

from sandbox.cli import aws_dashboard
from sandbox.cli.app import (
    RegionOption,
    StackOption,
    TargetOption,
    UsageError,
    app,
    check_target,
    console,
    table,
)
from sandbox.drills.targets.aws import DEFAULT_REGION
from sandbox.platform.hints import command as hint
from sandbox.platform.state import PACES, NotRunning, load
from sandbox.spec import profiles
from sandbox.spec.choices import (
    QUEUE_TYPES,
    REPLICATIONS,
    RUNTIMES,
    words,
)
from sandbox.spec.errors import StackError
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings, function_timeout_for

if TYPE_CHECKING:
    from rich.table import Table


@app.command()
def up(
    queue_type: Annotated[str, typer.Option(help=words(QUEUE_TYPES))] = "fifo",
    max_receive_count: Annotated[
        int, typer.Option(min=1, max=1000, help="Receives before the DLQ")
    ] = 25,
    visibility_timeout: Annotated[
        int, typer.Option(min=0, max=43200, help="Seconds")
    ] = QueueSettings.visibility_timeout_seconds,
    replication: Annotated[str, typer.Option(help="sync (Aurora-like) or async")] = "sync",
    batch_size: Annotated[int, typer.Option(min=1, max=10, help="Records per invocation")] = 10,
    batching_window: Annotated[
        float, typer.Option(min=0, max=300, help="Seconds to gather a fuller batch")
    ] = 0.0,
    concurrency: Annotated[int, typer.Option(min=1, max=16, help="Consumer instances")] = 2,
    function_timeout: Annotated[
        float | None,
        typer.Option(
            min=0.5,
            max=900,
            help="Seconds [default: the longest whole second that keeps the visibility timeout "
            ">= 6x it (AWS's rule), at least 1]",
        ),
    ] = None,
    auto_ports: Annotated[
        bool, typer.Option(help="Pick free ports instead of the defaults")
    ] = False,
    runtime: Annotated[
        str, typer.Option(help="native (processes on loopback) or compose (Docker containers)")
    ] = "native",
    pace: Annotated[
        str,
        typer.Option(
            help="How fast the control plane fails a lost writer over: fast (drills, tests) or "
            "aurora (about 30 s, for a workshop); for a new stack"
        ),
    ] = "fast",
    detection_window: Annotated[
        float | None,
        typer.Option(
            min=1,
            max=600,
            help="Seconds a writer may not answer before it is failed over (a new stack)",
        ),
    ] = None,
    consumer: Annotated[
        str | None,
        typer.Option(
            help="The write functions of a new stack: sandbox (the default: idempotent insert, "
            "partial batch failures) or guidance-sample (the guidance's published sample, to "
            "measure it: batch size 1, function and visibility timeouts 5 s, a plain insert; "
            "it sets those options)"
        ),
    ] = None,
) -> None:
    """Start the whole stack; repair whatever is down if it is partly up (else a no-op)."""
    if runtime not in RUNTIMES:
        raise UsageError(f"--runtime must be {words(RUNTIMES)}")
    if pace not in PACES:
        raise UsageError(f"--pace must be one of {', '.join(PACES)}")
    if queue_type not in QUEUE_TYPES:
        raise UsageError(f"--queue-type must be {words(QUEUE_TYPES)}")
    if replication not in REPLICATIONS:
        raise UsageError(f"--replication must be {words(REPLICATIONS)}")
    if consumer is not None and consumer not in profiles.NAMES:
        raise UsageError(f"--consumer must be one of {', '.join(profiles.NAMES)}")
    from sandbox import stack
    from sandbox.standins.dashboard import dashboard_url

    with contextlib.suppress(NotRunning):  # a stack that exists keeps its functions
        running = load().consumer
        if consumer is not None and consumer != running:
            raise StackError(
                f"this stack runs the {running} consumer; `make down` first to start one "
                f"with --consumer {consumer}"
            )
    queue, runner = profiles.settings(
        consumer or "sandbox",
        QueueSettings(
            type=queue_type,
            max_receive_count=max_receive_count,  # type: ignore[arg-type]
            visibility_timeout_seconds=visibility_timeout,
        ),
        RunnerSettings(
            batch_size=batch_size,
            batching_window_seconds=batching_window,
            concurrency=concurrency,
            function_timeout_seconds=function_timeout
            if function_timeout is not None
            else function_timeout_for(visibility_timeout),
        ),
    )
    options = stack.Options(
        queue=queue,
        runner=runner,
        control_plane=dataclasses.replace(
            PACES[pace],
            **({} if detection_window is None else {"detection_seconds": detection_window}),
        ),
        replication=replication,
        auto_ports=auto_ports,
        runtime=runtime,  # type: ignore[arg-type]
        consumer=consumer or "sandbox",
    )
    steps: list[str] = []
    with console.status("starting the stack") as spinner:
        state, started = stack.up(options, report=lambda step: _step(spinner, steps, step))
    if not started:
        repaired = any(step.startswith("repairing") for step in steps)
        console.print(
            "[bold]The stack was partly down: repaired in place.[/bold]"
            if repaired
            else "[bold]The stack is already up.[/bold]"
        )
        status()
        return
    console.print("[green]The stack is up.[/green]")
    endpoints = {
        "API (POST /orders)": state.api_url,
        "PgBouncer DSN": state.proxy_dsn,
        "AWS endpoint": f"{state.aws_endpoint}  (region {state.region})",
        "Queue": state.queue_url,
        "Dashboard": dashboard_url(state),
        "Token": f"`{hint('token')}`",
        "Try": f"`{hint('send')}` then `{hint('load --count 100 --rate 20')}`",
    }
    for label, value in endpoints.items():
        # soft_wrap: a DSN or URL split over two lines cannot be copied
        console.print(f"  {label:<20} {value}", soft_wrap=True, highlight=False)


def _step(spinner, steps: list[str], step: str) -> None:
    steps.append(step)
    console.print(f"  [dim]-[/dim] {step}", soft_wrap=True)
    spinner.update(step)


@app.command()
def down(
    force: Annotated[
        bool, typer.Option("--force", help="Stop even if messages would be lost")
    ] = False,
) -> None:
    """Stop everything and remove its data (refuses while messages are queued, unless --force)."""
    from sandbox import stack

    stack.down(force=force, report=lambda step: console.print(f"  [dim]-[/dim] {step}"))
    console.print("[green]The stack is down.[/green]")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable")] = False,
) -> None:
    """Health of each component, each node's role and replication, queue and DLQ depth."""
    from sandbox.ops.status import collect

    report = collect(load())
    if as_json:
        print(json.dumps(report, indent=2))
        return
    _print_components(report["components"])
    nodes = table(
        "node",
        "role",
        "up",
        "port",
        "replication",
        "lag (bytes)",
        "committed here",
        title="database",
        caption="committed here: the orders this node committed while it was the writer "
        "(counted in the writer's table)",
    )
    for name, node in report["nodes"].items():
        replication = (
            f"{node.get('state', '-')} / {node.get('sync', '-')}"
            if node["role"] == "reader"
            else report["replication"]
        )
        nodes.add_row(
            name,
            node["role"],
            _ok(node["up"]),
            str(node["port"]),
            replication,
            str(node.get("lag_bytes", "-")),
            str(node.get("committed", "-")),
        )
    console.print(nodes)
    console.print(_cluster_line(report), soft_wrap=True)
    queues = report["queues"]
    if queues:
        queue, dlq = queues["queue"], queues["dlq"]
        console.print(
            f"queue: {queue['visible']} visible, {queue['in_flight']} in flight;"
            f"  DLQ: {dlq['visible']} visible, {dlq['in_flight']} in flight"
        )
    else:
        console.print("queue: [red]unreachable[/red]")
    for name, value in report["alarms"].items():
        console.print(f"alarm {name}: {'[red]ALARM[/red]' if value == 'ALARM' else value}")
    if report["consumer"] != "sandbox":
        console.print(
            f"consumer: [yellow]{report['consumer']}[/yellow] "
            f"({profiles.named(report['consumer']).what})",
            soft_wrap=True,
        )
    if report["restored_with_localstack"]:
        console.print(
            f"{report['restored_with_localstack']} acknowledged order(s) restored from the "
            f"queue's journal after LocalStack died with them (`{hint('events')}`)",
            soft_wrap=True,
        )


def _print_components(rows: list[dict]) -> None:
    """One row per component; where the endpoints make it wider than the terminal, they are
    listed under the table instead, one a line, whole (a path or URL to copy)."""
    total = sum(row["memory_mib"] for row in rows)

    def components(with_endpoint: bool) -> Table:
        shown = table(
            "component",
            "health",
            "pid",
            "memory",
            *(["endpoint"] if with_endpoint else []),
            title="components",
            caption=f"whole stack: {total:.0f} MiB (PSS)",
        )
        for row in rows:
            shown.add_row(
                row["name"],
                _ok(row["healthy"]),
                str(row["pid"] or "-"),
                f"{row['memory_mib']:.0f} MiB",
                *([row["endpoint"]] if with_endpoint else []),
            )
        return shown

    whole = components(with_endpoint=True)
    wanted = console.measure(whole, options=console.options.update_width(10_000)).maximum
    if wanted <= console.width:
        console.print(whole)
        return
    console.print(components(with_endpoint=False))
    console.print("endpoints:")
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        line = f"  {row['name']:<{width}}  {row['endpoint']}"
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def _cluster_line(report: dict) -> str:
    """One line: is there a writer, and what the control plane is doing (about it), since when."""
    from sandbox.standins import control_plane

    plane = report["control_plane"]
    writer_up = report["nodes"][report["writer"]]["up"]
    if not plane:
        doing = "[red]the control plane is not running[/red] (`make up` starts it)"
    else:
        doing = control_plane.describe(plane)
        if not report["control_plane_healthy"]:
            doing += " [red](not running: its last word)[/red]"
    if writer_up:
        return f"writer: {report['writer']};  {doing}"
    return f"[red]no writer[/red] ({report['writer']} is not answering);  {doing}"


def _ok(flag: bool) -> str:
    return "[green]up[/green]" if flag else "[red]down[/red]"


@app.command()
def token(
    username: Annotated[str, typer.Option(help="Who signs in")] = "workshop",
    expires_in: Annotated[int, typer.Option(min=1, max=86400, help="Seconds")] = 3600,
) -> None:
    """Print an access token for the API (use as `Authorization: Bearer <token>`)."""
    from sandbox.standins import cognito

    print(cognito.issue_token(load(), username=username, expires_in=expires_in))


@app.command()
def dashboard(
    target: TargetOption = "local",
    stack_name: StackOption = None,
    region: RegionOption = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help=f"--target aws: where to serve (default {aws_dashboard.DEFAULT_PORT})",
        ),
    ] = None,
) -> None:
    """Start the dashboard if it is not running, and print its URL.

    --target aws: a deployed stack's read-only page, served here until Ctrl-C.
    """
    check_target(target, stack_name, region)
    if stack_name:
        port = port or aws_dashboard.DEFAULT_PORT
        code = aws_dashboard.serve(stack_name, region or DEFAULT_REGION, port)
        raise typer.Exit(code)
    if port is not None:
        raise UsageError("--port is for --target aws (the local dashboard's is fixed)")
    from sandbox import stack
    from sandbox.standins.dashboard import dashboard_url

    state = load()
    if not stack.health(state).get("dashboard"):
        stack.start(state, "dashboard")
    console.print(f"dashboard: {dashboard_url(state)}")
