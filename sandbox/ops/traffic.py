"""Background traffic: orders at a steady rate from a detached process, until stopped.

`sandbox load` sends a fixed batch and waits for it; a workshop wants traffic that keeps flowing
while it fails the database over, started and stopped from the CLI or the dashboard, and outliving
the command (or the Streamlit rerun) that started it. `start` spawns ``python -m
sandbox.ops.traffic``, which sends through `sandbox.ops.load.send_orders` (the one HTTP client),
bounded by count and time.

Once a second the process writes its counters to ``<run dir>/traffic.json``: its pid and host,
accepted and errored answers by kind, and accepted/s for the last minutes. That file is the record
of the traffic (not ``state.json``): a second process rewriting the whole state file from a copy
it read before a failover would put the old roles back. It is also how others see and stop it:
the traffic may run in another container than the one asking (the dashboard's starts it in the
dashboard's), so "running" is a fresh report and "stop" a request file it obeys, not a signal.
`committed_per_second` reads the other half of the throughput, commits per second, from the
writer's ``orders.committed_at``.
"""

from __future__ import annotations

import _thread
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sandbox.ops.load import Sent, send_orders
from sandbox.platform import compose, network, process
from sandbox.platform.state import NotRunning, StackState, load

MAX_RATE = 1000.0  # orders per second: loopback traffic, kept well below what the gateway takes
MAX_SECONDS = 3600.0
HISTORY_SECONDS = 300  # how much per-second history the status file keeps
FILE = "traffic.json"
STOP_FILE = "traffic.stop"  # its presence asks the traffic to stop
#: A report older than this is a process that died without saying so (killed, its container gone).
STALE_SECONDS = 10.0
#: Bounds, not waits: starting ends at the process's first report, stopping once it has exited.
START_TIMEOUT = 120.0
#: Longer than one request's own timeout (`sandbox.ops.load.Client`): a stop lets the requests in
#: flight end and the last report ("finished") be written before it resorts to SIGKILL.
STOP_TIMEOUT = 60.0


def stats(state: StackState) -> dict[str, Any] | None:
    """The traffic's last report (None if traffic never ran on this stack), plus ``running``."""
    try:
        report = json.loads(state.path(FILE).read_text())
    except FileNotFoundError:
        return None
    fresh = time.time() - report["updated"] < STALE_SECONDS
    report["running"] = report["finished"] is None and fresh
    return report


def running(state: StackState) -> bool:
    return running_rate(stats(state)) is not None


def running_rate(report: dict[str, Any] | None) -> float | None:
    """Orders/s of the traffic a `stats` report says runs now, or None."""
    return float(report["rate"]) if report and report["running"] else None


def start(state: StackState, rate: float, max_seconds: float = 600) -> int:
    """Start traffic at ``rate`` orders/s for at most ``max_seconds``; returns its pid.

    Returns once the process has written its first report, so a caller that shows the traffic
    right away sees it running (or gets the reason it did not start).
    """
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate must be > 0 and <= {MAX_RATE:g} orders/s")
    if not 1 <= max_seconds <= MAX_SECONDS:
        raise ValueError(f"max seconds must be between 1 and {MAX_SECONDS:g}")
    if running(state):
        raise RuntimeError("traffic is already running: stop it first")
    state.path(FILE).unlink(missing_ok=True)
    state.path(STOP_FILE).unlink(missing_ok=True)
    argv = ["-m", "sandbox.ops.traffic", f"{rate:g}", f"{max_seconds:g}"]
    log = state.path("logs", "traffic.log")
    if state.runtime == "compose" and network.in_container():
        # The Compose profile's CLI service is a one-off container, gone when the command
        # returns, and its processes with it: the traffic gets a one-off container of its own.
        compose.Compose().detach(state, argv, log)
        process.wait_until(
            lambda: (stats(state) or {}).get("running"),
            timeout=START_TIMEOUT,
            what=f"traffic (its log: {log})",
        )
        return int((stats(state) or {}).get("pid", 0))
    env = {"SANDBOX_RUN_DIR": state.run_dir, "PYTHONUNBUFFERED": "1"}
    pid = process.spawn([sys.executable, *argv], log=log, env=env)

    def reported() -> bool:
        if not process.alive(pid):
            raise RuntimeError(f"traffic did not start: see {log}")
        report = stats(state)
        return bool(report and report.get("pid") == pid)

    process.wait_until(reported, timeout=START_TIMEOUT, what="traffic", fatal=RuntimeError)
    return pid


def stop(state: StackState) -> bool:
    """Stop the traffic, wherever it runs; False if none was running.

    It is asked (the stop file), lets the requests in flight end and writes its last report;
    one that does not within the bound is killed if it runs here, on this host.
    """
    report = stats(state)
    if not (report and report["running"]):
        return False
    state.path(STOP_FILE).touch()
    try:
        process.wait_until(lambda: not running(state), timeout=STOP_TIMEOUT, what="traffic stop")
    except TimeoutError:
        if report.get("host") != socket.gethostname():
            raise RuntimeError(
                f"traffic (pid {report['pid']} on {report.get('host')}) did not stop within "
                f"{STOP_TIMEOUT:g} s; it is bounded by its own max seconds"
            ) from None
        process.stop(report["pid"], timeout=5)
    return True


def committed_per_second(state: StackState, seconds: int = HISTORY_SECONDS) -> list[list[int]]:
    """``[epoch second, commits]`` on the writer for the last ``seconds``, oldest first.

    Read from the writer itself (not the proxy), like the drills, so a paused proxy never hides
    a commit; raises if the writer is down.
    """
    from sandbox.standins.aurora import database  # psycopg: not at the top (the CLI's start time)

    with database.connect(state, state.writer.name, connect_timeout=2) as conn:
        rows = conn.execute(
            "SELECT floor(EXTRACT(EPOCH FROM committed_at))::bigint, count(*) FROM orders "
            "WHERE committed_at > now() - make_interval(secs => %s) GROUP BY 1 ORDER BY 1",
            (seconds,),
        ).fetchall()
    return [[int(second), int(count)] for second, count in rows]


class _Counters:
    """What the traffic has seen so far, written out whole once a second."""

    def __init__(self, rate: float, max_seconds: float) -> None:
        self.lock = threading.Lock()
        self.report: dict[str, Any] = {
            "pid": None,
            "rate": rate,
            "max_seconds": max_seconds,
            "started": time.time(),
            "updated": time.time(),
            "finished": None,
            "sent": 0,
            "accepted": 0,
            "errors": {},  # kind (HTTP status, or why there was no answer) -> count
            "per_second": {},  # epoch second -> [accepted, errors]
        }

    def add(self, sent: Sent) -> None:
        second = str(int(sent.answered_at))
        with self.lock:
            self.report["sent"] += 1
            bucket = self.report["per_second"].setdefault(second, [0, 0])
            if sent.accepted:
                self.report["accepted"] += 1
                bucket[0] += 1
            else:
                kind = str(sent.status) if sent.status else sent.error or "no answer"
                self.report["errors"][kind] = self.report["errors"].get(kind, 0) + 1
                bucket[1] += 1

    def write(self, path: Path, **changes: Any) -> None:
        with self.lock:
            self.report |= changes | {"updated": time.time()}
            oldest = time.time() - HISTORY_SECONDS
            seconds = self.report["per_second"]
            for second in [s for s in seconds if int(s) < oldest]:
                del seconds[second]
            text = json.dumps(self.report)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)  # atomic: the dashboard never reads half a report


def _serve(run_dir: Path, rate: float, max_seconds: float) -> None:
    """The traffic process: send until the bound, a SIGTERM, or the stack going away."""
    state = load(run_dir)
    counters = _Counters(rate, max_seconds)
    path = state.path(FILE)
    done = threading.Event()

    bound = "every order was sent (its bound)"
    why = [bound]  # why it finished, in its last report

    def on_term(*_: Any) -> None:
        if why[0] == bound:  # not the reporter's own stop (it says why first)
            why[0] = "asked to stop (SIGTERM)"
        raise SystemExit(0)

    def report_every_second() -> None:
        while not done.wait(1.0):
            counters.write(path)
            if state.path(STOP_FILE).exists():
                why[0] = "asked to stop"
                _thread.interrupt_main(signal.SIGTERM)
                return
            if _stack_gone(run_dir, state.client_id):
                # `down` removed the stack (or a new one replaced it): nobody takes these orders.
                why[0] = "the stack was taken down"
                _thread.interrupt_main(signal.SIGTERM)
                return

    signal.signal(signal.SIGTERM, on_term)
    counters.write(path, pid=os.getpid(), host=socket.gethostname())
    reporter = threading.Thread(target=report_every_second, daemon=True)
    reporter.start()
    try:
        send_orders(
            state,
            int(rate * max_seconds),
            rate,
            prefix=f"traffic-{uuid.uuid4().hex[:8]}",
            max_seconds=max_seconds,
            progress=counters.add,
        )
    except Exception as error:  # the last report says why, not "its bound"
        why[0] = f"failed: {type(error).__name__}: {error}"
        raise
    finally:
        done.set()
        counters.write(path, finished=time.time(), why=why[0])


def _stack_gone(run_dir: Path, client_id: str) -> bool:
    """True only on evidence: the state file removed, or another stack's (a new user pool). A
    look that failed (the file being replaced, say) says nothing: the traffic goes on."""
    try:
        return load(run_dir).client_id != client_id
    except NotRunning:
        return True
    except Exception:
        return False


if __name__ == "__main__":
    _serve(Path(os.environ["SANDBOX_RUN_DIR"]), float(sys.argv[1]), float(sys.argv[2]))
