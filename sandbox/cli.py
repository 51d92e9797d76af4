"""The `sandbox` command: what the Makefile, the workshop and the drills do, from a terminal."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.exceptions import TyperException

from sandbox import (
    aws_dashboard,
    control_plane,
    database,
    dlq,
    events,
    failover,
    faults,
    identity,
    profiles,
    stack,
    traffic,
)
from sandbox import drill as drills
from sandbox.load import PATIENT, POISON_CUSTOMER_ID, Client, ClientPolicy, order, send_orders
from sandbox.queue import QueueSettings, function_timeout_for
from sandbox.state import PACES, NotRunning, RunnerSettings, load
from sandbox.targets.aws import DEFAULT_REGION, AwsTarget

app = typer.Typer(
    help="Near-zero-RPO sandbox: SQS in front of Aurora, emulated on loopback.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # click's plain help: it wraps at the terminal's width, cuts nothing
)
console = Console()


@app.command()
def up(
    queue_type: Annotated[str, typer.Option(help="fifo or standard")] = "fifo",
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
    if runtime not in ("native", "compose"):
        raise stack.StackError("--runtime must be native or compose")
    if pace not in PACES:
        raise stack.StackError(f"--pace must be one of {', '.join(PACES)}")
    if queue_type not in ("fifo", "standard"):
        raise stack.StackError("--queue-type must be fifo or standard")
    if replication not in ("sync", "async"):
        raise stack.StackError("--replication must be sync or async")
    if consumer is not None and consumer not in profiles.NAMES:
        raise stack.StackError(f"--consumer must be one of {', '.join(profiles.NAMES)}")
    with contextlib.suppress(NotRunning):  # a stack that exists keeps its functions
        running = load().consumer
        if consumer is not None and consumer != running:
            raise stack.StackError(
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
        "Dashboard": stack.dashboard_url(state),
        "Token": "`sandbox token` (or `.venv/bin/sandbox token`)",
        "Try": "`sandbox send` then `sandbox load --count 100 --rate 20`",
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
    stack.down(force=force, report=lambda step: console.print(f"  [dim]-[/dim] {step}"))
    console.print("[green]The stack is down.[/green]")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable")] = False,
) -> None:
    """Health of each component, each node's role and replication, queue and DLQ depth."""
    from sandbox.status import collect

    report = collect(load())
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table("component", "health", "pid", "memory", "endpoint", title="components")
    for row in report["components"]:
        memory = f"{row['memory_mib']:.0f} MiB"
        table.add_row(
            row["name"], _ok(row["healthy"]), str(row["pid"] or "-"), memory, row["endpoint"]
        )
    total = sum(row["memory_mib"] for row in report["components"])
    table.caption = f"whole stack: {total:.0f} MiB (PSS)"
    console.print(table)
    nodes = Table(
        "node", "role", "up", "port", "replication", "lag (bytes)", "committed", title="database"
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
    if report["lost_with_localstack"]:
        console.print(
            f"[red]{report['lost_with_localstack']} acknowledged order(s) died with "
            "LocalStack[/red] (it keeps queues in memory; ids in .run/lost-with-localstack.log)",
            soft_wrap=True,
        )


def _cluster_line(report: dict) -> str:
    """One line: is there a writer, and what the control plane is doing (about it), since when."""
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
    print(identity.issue_token(load(), username=username, expires_in=expires_in))


@app.command()
def send(
    customer_id: Annotated[int, typer.Option(help="Customer (1-1000 exist)")] = 1,
    amount: Annotated[str, typer.Option(help="Amount, e.g. 12.50")] = "19.99",
    order_id: Annotated[str | None, typer.Option(help="Idempotency key (default: random)")] = None,
    note: Annotated[str, typer.Option(help="Free text, stored verbatim")] = "",
    poison: Annotated[
        bool, typer.Option("--poison", help="An unknown customer: ends in the DLQ")
    ] = False,
) -> None:
    """Send one order through the API and print the answer."""
    client = Client(load())
    body = order(
        order_id or f"order-{uuid.uuid4().hex[:12]}",
        POISON_CUSTOMER_ID if poison else customer_id,
        amount,
        note,
    )
    result = client.post(body)
    client.close()
    print(f"{result.status} {result.error or json.dumps({'order_id': result.order_id})}")
    if not result.accepted:
        raise typer.Exit(1)


@app.command("load")
def load_traffic(
    count: Annotated[int, typer.Option(min=1, max=1_000_000, help="Orders to send")] = 100,
    rate: Annotated[float, typer.Option(min=0.1, max=5000, help="Orders per second")] = 50,
    max_seconds: Annotated[float | None, typer.Option(min=1, help="Stop after this long")] = None,
) -> None:
    """Send COUNT orders at RATE per second (bounded); print accepted and rejected counts."""
    state = load()
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("orders", total=count)
        ledger = send_orders(
            state, count, rate, max_seconds=max_seconds, progress=lambda _: progress.advance(task)
        )
    statuses = Counter(sent.status for sent in ledger)
    accepted = sum(sent.accepted for sent in ledger)
    console.print(
        f"sent {len(ledger)}: accepted {accepted}, rejected {len(ledger) - accepted}"
        + (f"  (by status: {dict(statuses)})" if len(statuses) > 1 else "")
    )


@app.command("failover")
def failover_cmd(
    mode: Annotated[str, typer.Option(help="crash, switchover or hang")] = "crash",
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
    if mode not in ("crash", "switchover", "hang"):
        raise stack.StackError("--mode must be crash, switchover or hang")
    if lag and mode != "crash":
        raise stack.StackError("--lag is for --mode crash")
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
    console.print(
        f"{done.old_writer} -> {done.new_writer}: writes back after {done.seconds:.2f} s; "
        f"{done.old_writer} is the reader now"
    )


@app.command()
def failback() -> None:
    """Return to the original layout (n1 writer, n2 reader): a switchover (if the writer is
    down, n1 is promoted)."""
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
    if mode not in ("sync", "async"):
        raise stack.StackError("mode must be sync or async")
    state = load()
    with failover.exclusive(state, "sandbox replication"):  # never halfway through a failover
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
        raise stack.StackError(
            "lock-stall lasts until the consumer times out on an insert, and nothing is being "
            "written: start traffic first (sandbox traffic start), or give --seconds"
        )
    until = seconds if seconds is not None else faults.consumer_timed_out(state)
    with console.status(f"inserts on {state.writer.name} wait on a lock"):
        faults.lock_stall(state, until)
    console.print(f"lock on {state.writer.name} released")


def _unannounced(fault: str, what: str) -> None:
    def command() -> None:
        name, pid = faults.unannounced(load(), fault)
        console.print(f"{fault}: {name} (pid {pid}); watch `sandbox status` and `sandbox events`")

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


dlq_app = typer.Typer(help="Inspect, redrive or purge the dead-letter queue.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list() -> None:
    """Messages in the DLQ: order id, receives, first received, last error."""
    parked = dlq.peek(load())
    table = Table(
        "message id",
        "order id",
        "receives",
        "first received",
        "last error",
        title=f"DLQ: {len(parked)} message(s)",
    )
    for p in parked:
        first = (
            time.strftime("%H:%M:%S", time.localtime(p.first_received)) if p.first_received else "-"
        )
        table.add_row(p.message_id, p.order_id, str(p.receives), first, p.last_error[:80])
    console.print(table)


@dlq_app.command("show")
def dlq_show(key: Annotated[str, typer.Argument(help="Message id or order id")]) -> None:
    """One DLQ message: body, attributes and the consumer's last error."""
    parked = dlq.show(load(), key)
    print(
        json.dumps(
            {
                "message_id": parked.message_id,
                "order_id": parked.order_id,
                "receives": parked.receives,
                "last_error": parked.last_error,
                "body": json.loads(parked.body),
                "attributes": parked.attributes,
            },
            indent=2,
        )
    )


@dlq_app.command("redrive")
def dlq_redrive(
    method: Annotated[str, typer.Option(help="auto, move-task or manual")] = "auto",
) -> None:
    """Send every DLQ message back to the queue (fix the cause first: `sandbox customer add`)."""
    moved, used = dlq.redrive(load(), method)  # type: ignore[arg-type]
    console.print(f"redrove {moved} message(s) ({used})")


@dlq_app.command("purge")
def dlq_purge(yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False) -> None:
    """Delete every DLQ message (asks first)."""
    state = load()
    count = stack.queued(state)[1]
    if not yes:
        if not sys.stdin.isatty():
            raise stack.StackError(f"purge would delete {count} message(s): confirm with --yes")
        typer.confirm(f"Delete {count} message(s) from the DLQ for good?", abort=True)
    console.print(f"purged {dlq.purge(state)} message(s)")


customer_app = typer.Typer(
    help="The customers table (the poison order's fix).", no_args_is_help=True
)
app.add_typer(customer_app, name="customer")


@customer_app.command("add")
def customer_add(
    customer_id: int, name: Annotated[str, typer.Option()] = "added in the workshop"
) -> None:
    """Add a customer, so orders waiting for it (in the DLQ) can commit after a redrive."""
    database.add_customer(load(), customer_id, name)
    console.print(f"customer {customer_id} added")


# What `drill` and `dashboard` share: which stack (this sandbox, or one deployed from aws/).
TargetOption = Annotated[
    str, typer.Option(help="local (this sandbox) or aws (a stack deployed from aws/)")
]
StackOption = Annotated[
    str | None, typer.Option("--stack", help="CloudFormation stack (--target aws)")
]
RegionOption = Annotated[
    str | None, typer.Option(help=f"AWS region (--target aws; default {DEFAULT_REGION})")
]


@app.command()
def drill(
    fault: Annotated[
        str,
        typer.Option(
            help=", ".join(drills.FAULTS)
            + " (the last eight unannounced: a signal, or on Compose a cut in the network, that"
            " the control plane must notice)"
        ),
    ] = "crash",
    path: Annotated[str, typer.Option(help="queue, direct or both")] = "both",
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
    if fault not in drills.FAULTS:
        raise stack.StackError(f"--fault must be one of {', '.join(drills.FAULTS)}")
    if path not in ("queue", "direct", "both"):
        raise stack.StackError("--path must be queue, direct or both")
    _check_target(target, stack_name, region)
    aws = AwsTarget(stack_name, region or DEFAULT_REGION) if stack_name else None
    if aws:
        aws.check(fault, outage)  # a fault AWS cannot inject: one line, before any progress bar
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("sending", total=None)  # sized when the drill names its paths

        def on(step: str, info: dict) -> None:
            if step == "sent":
                progress.advance(task)
            elif step == "paths":
                progress.update(task, total=count * len(info["paths"]))
            else:
                progress.update(
                    task,
                    description={
                        "fault": f"fault: {fault}",
                        "settling": "settling",
                        "redriving": "redriving DLQ",
                    }.get(step, step),
                )

        client = ClientPolicy(timeout=client_timeout, retries=retries, in_flight=in_flight)
        if aws:
            report = drills.run_on(
                aws, fault, path, count, rate, outage, redrive, progress=on, client=client
            )
        else:
            report = drills.run(
                load(), fault, path, count, rate, outage, redrive, progress=on, client=client
            )
    _print_report(report)
    if json_file:
        json_file.write_text(report.to_json())
        console.print(f"report written to {json_file}")


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


def _check_target(target: str, stack_name: str | None, region: str | None) -> None:
    if target not in ("local", "aws"):
        raise stack.StackError("--target must be local or aws")
    if target == "aws" and not stack_name:
        raise stack.StackError("--target aws needs --stack NAME (the CloudFormation stack)")
    if target == "local" and (stack_name or region):
        raise stack.StackError("--stack and --region are for --target aws")


def _print_report(report: drills.DrillReport) -> None:
    table = Table(
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
        table.add_row(label, *(str(getattr(p, key)) for p in report.paths))
    table.add_row(
        "error window (s after fault)",
        *(
            f"{p.errors_from_s} .. {p.errors_to_s}" if p.client_errors else "-"
            for p in report.paths
        ),
    )
    table.add_row(
        "latency p50/p95/p99 ms",
        *(
            "/".join(str(p.latency_ms.get(k, "-")) for k in ("p50", "p95", "p99"))
            for p in report.paths
        ),
    )
    table.add_row(
        "client wait p50/p95/p99 ms",
        *(
            "/".join(str(p.client_wait_ms.get(k, "-")) for k in ("p50", "p95", "p99"))
            for p in report.paths
        ),
    )
    if report.client.retries:
        table.add_row("retried by the client", *(str(p.retried) for p in report.paths))
    table.add_row(
        "every stored row a counted request",
        *("yes" if p.balanced else f"[red]NO: {p.unexpected} not[/red]" for p in report.paths),
    )
    table.add_row(
        "guidance's check: rows + DLQ >= requests",
        *(
            f"{'passes' if p.guidance_check else 'FAILS'} ({p.rows_written} + {p.in_dlq})"
            for p in report.paths
        ),
    )
    console.print(table)
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
        f"peak queue depth: {report.peak_queue_depth};  "
        f"drain: {_seconds(report.drain_seconds)};  redriven from DLQ: {report.redriven}",
        soft_wrap=True,
    )
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value} s"


@app.command("events")
def events_cmd() -> None:
    """Cluster events (failover started / completed ...), oldest first."""
    table = Table("time", "code", "event", title="events")
    for event in events.read(load()):
        table.add_row(event["time"], event["code"], event["message"])
    console.print(table)


traffic_app = typer.Typer(
    help="Background traffic that keeps flowing until stopped (bounded in time).",
    no_args_is_help=True,
)
app.add_typer(traffic_app, name="traffic")


@traffic_app.command("start")
def traffic_start(
    rate: Annotated[float, typer.Option(min=0.1, max=traffic.MAX_RATE, help="Orders/s")] = 20,
    max_seconds: Annotated[
        float, typer.Option(min=1, max=traffic.MAX_SECONDS, help="Stop after this long")
    ] = 600,
) -> None:
    """Send orders at RATE per second in the background, until `traffic stop` or MAX_SECONDS."""
    pid = traffic.start(load(), rate, max_seconds)
    console.print(f"traffic at {rate:g}/s for at most {max_seconds:g} s (pid {pid})")


@traffic_app.command("stop")
def traffic_stop() -> None:
    """Stop the background traffic and print what it sent."""
    state = load()
    stopped = traffic.stop(state)
    report = traffic.stats(state)
    if not stopped or report is None:
        console.print("no traffic running")
        return
    errors = sum(report["errors"].values())
    console.print(
        f"traffic stopped: sent {report['sent']}, accepted {report['accepted']}, errors {errors}"
        + (f" (by kind: {report['errors']})" if errors else "")
    )


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
    _check_target(target, stack_name, region)
    if stack_name:
        port = port or aws_dashboard.DEFAULT_PORT
        code = aws_dashboard.serve(stack_name, region or DEFAULT_REGION, port)
        raise typer.Exit(code)
    if port is not None:
        raise stack.StackError("--port is for --target aws (the local dashboard's is fixed)")
    state = load()
    if not stack.health(state).get("dashboard"):
        stack.start(state, "dashboard")
    console.print(f"dashboard: {stack.dashboard_url(state)}")


def main() -> None:
    """Entry point: known failures become one line on stderr and exit code 1, never a traceback."""
    try:
        code = app(standalone_mode=False)  # returns the code of a typer.Exit
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except TyperException as error:  # bad usage: one line, not a box
        if type(error).__name__ != "NoArgsIsHelpError":  # (the help is already printed)
            print(
                f"error: {error.format_message()} (see `sandbox {_command()}--help`)",
                file=sys.stderr,
            )
        sys.exit(2)
    except (
        stack.StackError,
        FileNotFoundError,
        LookupError,
        TimeoutError,
        ValueError,
        RuntimeError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:  # anything else: still one line, with where to look
        print(f"error: {type(error).__name__}: {error} (logs: .run/logs)", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def _command() -> str:
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
    return f"{command} " if command in typer.main.get_command(app).commands else ""


if __name__ == "__main__":
    main()
