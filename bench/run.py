"""``make bench`` / ``python -m bench``: start stacks of its own, measure, print, write JSON, stop.

The CLI's start (`bench.cli`) needs no stack: it runs first.

The failover, drain and API sections share one stack; the consumer profiles get one each, after
it is down (`bench.profiles`), and so do the two runtimes, native then Compose (`bench.runtimes`,
which needs the Docker engine `make bench` installs). Every stack runs on free ports in a
temporary run dir, as the test suite's does, so a workshop stack or another engineer's test stack
on the same machine is never touched; each is torn down (``down --force``), on Ctrl-C and
SIGTERM too.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from bench import accept, cli, drain, profiles, report, rto, runtimes, soak
from bench.model import Section
from bench.stacks import own_stack
from sandbox import stack
from sandbox.platform.state import StackState

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
SECTIONS = ("cli", "rto", "drain", "api", "profiles", "runtimes", "soak")
ON_ITS_STACK = ("rto", "drain", "api")  # the rest start stacks of their own
QUICK = {
    "failovers": 2,
    "drain": 300,
    "orders": 200,
    "profile_orders": 100,
    "runtime_orders": 200,
    "soak_minutes": 3,
    "cli_runs": 10,
}
SETTLE_TIMEOUT = 600.0  # a bound for the queue to empty between sections, not a pause


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--failovers", type=int, default=10, help="crash failovers, then as many writer kills (N)"
    )
    parser.add_argument("--drain", type=int, default=3000, help="orders to drain (M)")
    parser.add_argument("--orders", type=int, default=2000, help="orders for API accept (K)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent API clients (C)")
    parser.add_argument(
        "--profile-orders", type=int, default=300, help="orders drained per consumer profile"
    )
    parser.add_argument(
        "--runtime-orders",
        type=int,
        default=1000,
        help="orders per path of the crash drill on each runtime (runtimes: native and Compose;"
        " it also times a cold image build, which downloads the image's packages)",
    )
    parser.add_argument(
        "--soak-minutes", type=float, default=30, help="the soak's length (sandbox chaos)"
    )
    parser.add_argument("--soak-rate", type=float, default=30, help="the soak's orders/s")
    parser.add_argument("--load-rate", type=float, default=20, help="orders/s during failovers")
    parser.add_argument(
        "--cli-runs", type=int, default=20, help="runs of each command the CLI's start times"
    )
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section")
    parser.add_argument("--quick", action="store_true", help="a short smoke run: " + str(QUICK))
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, min(getattr(args, name), value))
    counts = (
        args.failovers,
        args.drain,
        args.orders,
        args.clients,
        args.profile_orders,
        args.runtime_orders,
        args.soak_minutes,
        args.cli_runs,
    )
    if min(counts) < 1 or args.load_rate <= 0 or args.soak_rate <= 0:
        parser.error("counts, clients and the load rate must be positive")
    return args


class Ui:
    """The live progress display; sections report (phase, done, total) from any thread."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()

    def log(self, message: str) -> None:
        self.progress.console.log(message)

    def tick(self, phase: str, done: int, total: int) -> None:
        with self.lock:
            if phase not in self.tasks:
                self.tasks[phase] = self.progress.add_task(phase, total=total)
        self.progress.update(self.tasks[phase], completed=done, total=total)


def wait_empty(state: StackState, ui: Ui) -> None:
    """Between sections: what one left queued (redeliveries after a crash) must not compete."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while (left := stack.queued(state)[0]) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left:
        ui.log(f"[yellow]{left} message(s) still queued after {SETTLE_TIMEOUT:.0f} s[/yellow]")


def measure(state: StackState, keys: list[str], args: argparse.Namespace, ui: Ui) -> list[Section]:
    """Each section on the benchmark's stack in turn; one that fails is reported as such and the
    next still runs."""

    def on_trial(index: int, trial: rto.Trial) -> None:
        ui.tick("crash failovers", index + 1, args.failovers)
        ui.log(
            f"failover {index + 1}/{args.failovers} {trial.old_writer}->{trial.new_writer}: "
            f"accepting {trial.accepting_s:.3f} s, first commit {trial.first_commit_s:.3f} s, "
            f"rejoin ({trial.rejoin_method}) {trial.rejoin_s:.2f} s"
        )

    def on_kill(index: int, kill: rto.Kill) -> None:
        ui.tick("unannounced writer kills", index + 1, args.failovers)
        ui.log(
            f"kill {index + 1}/{args.failovers} {kill.old_writer}->{kill.new_writer}: detected "
            f"{kill.detected_s:.2f} s, failover {kill.failover_s:.2f} s, accepting "
            f"{kill.accepting_s:.2f} s"
        )

    runs: dict[str, tuple[str, Callable[[], Section]]] = {
        "rto": (
            "Failover RTO",
            lambda: rto.run(state, args.failovers, args.load_rate, on_trial, on_kill),
        ),
        "drain": ("Drain", lambda: drain.run(state, args.drain, args.clients, ui.tick)),
        "api": ("API accept", lambda: accept.run(state, args.orders, args.clients, ui.tick)),
    }
    sections = []
    for key in keys:
        title, run = runs[key]
        wait_empty(state, ui)
        sections.append(section(key, title, run, ui))
    return sections


def section(key: str, title: str, run: Callable[[], Section], ui: Ui) -> Section:
    ui.log(f"[bold]{title}[/bold]")
    try:
        return run()
    except Exception as error:
        ui.log(f"[red]{title} failed: {type(error).__name__}: {error}[/red]")
        return Section(key, title, error=f"{type(error).__name__}: {error}")


def machine(loadavg_start: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "loadavg_start": loadavg_start,
        "loadavg_end": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt  # SIGTERM takes the same way out as Ctrl-C: through the teardown


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Piped into a log, rich would assume 80 columns and wrap every table row.
    console = Console(width=None if sys.stdout.isatty() else 132, log_path=False)
    signal.signal(signal.SIGTERM, _interrupt)
    started, loadavg = time.time(), os.getloadavg()
    code = 1
    ui = Ui(console)
    options = stack.Options(auto_ports=True)
    selected = args.only or list(SECTIONS)
    try:
        sections: list[Section] = []
        with ui.progress:
            if "cli" in selected:
                sections.append(
                    section("cli", "CLI start", lambda: cli.run(args.cli_runs, ui.log), ui)
                )
            if on_its_stack := [key for key in selected if key in ON_ITS_STACK]:
                # Down before the profiles' stacks start: they must not compete with it.
                def failed() -> bool:
                    return any(s.error for s in sections)

                with own_stack(options, "benchmark", ui.log, failed) as state:
                    sections += measure(state, on_its_stack, args, ui)
            if "profiles" in selected:
                sections.append(
                    section(
                        "profiles",
                        "Consumer profiles",
                        lambda: profiles.run(args.profile_orders, args.clients, ui.tick, ui.log),
                        ui,
                    )
                )
            if "runtimes" in selected:
                sections.append(
                    section(
                        "runtimes",
                        "Native and Compose",
                        lambda: runtimes.run(args.runtime_orders, ui.log),
                        ui,
                    )
                )
            if "soak" in selected:
                sections.append(
                    section(
                        "soak",
                        "Soak",
                        lambda: soak.run(args.soak_minutes, args.soak_rate, ui.tick, ui.log),
                        ui,
                    )
                )
        header = {
            "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "wall_seconds": time.time() - started,
            "machine": machine(loadavg),
            "settings": {
                "failovers": args.failovers,
                "drain": args.drain,
                "orders": args.orders,
                "clients": args.clients,
                "load_rate": args.load_rate,
                "profile_orders": args.profile_orders,
                "runtime_orders": args.runtime_orders,
                "soak_minutes": args.soak_minutes,
                "soak_rate": args.soak_rate,
                "cli_runs": args.cli_runs,
                "quick": args.quick,
                "replication": options.replication,
                "runner": asdict(options.runner),
                "queue": options.queue.to_dict(),
            },
        }
        report.show(console, header, sections)
        report.write(args.json, header, sections)
        console.print(f"\nresults: {args.json}")
        code = 0 if not any(s.error for s in sections) else 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        code = 130
    return code
