"""The page's read-only panels: headline numbers, replication, the drill scoreboard, the running
job. Each takes what `snapshot.take` read and lays it out; none decides anything about the data."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.jobs import Job
from dashboard.snapshot import Snapshot
from sandbox.drills.drill import PathReport
from sandbox.platform.hints import command as hint
from sandbox.spec.alarms import DLQ_NOT_EMPTY
from sandbox.standins.control_plane import describe


def now(snapshot: Snapshot) -> None:
    """The figures the room watches, on the first screen: the queue's and the DLQ's depth (the
    DLQ's with its CloudWatch alarm, as AWS pages), and the last complete second's orders
    accepted and committed. (Visible and in flight apart: on the picture's queue and the
    depth chart.)"""
    queue, dlq = snapshot.depth("queue"), snapshot.depth("dlq")
    second = str(int(snapshot.taken) - 1)
    traffic = snapshot.traffic or {}
    accepted, _ = traffic.get("per_second", {}).get(second, [0, 0])
    commits = dict(map(tuple, snapshot.committed or [])).get(int(second), 0)
    cells = st.columns(4)
    cells[0].metric("queue depth", "?" if queue is None else queue["visible"] + queue["in_flight"])
    alarm = ((snapshot.status or {}).get("alarms") or {}).get(DLQ_NOT_EMPTY.name)
    cells[1].metric(
        "DLQ",
        "?" if dlq is None else dlq["visible"] + dlq["in_flight"],
        delta=f"alarm: {alarm}" if alarm else None,
        delta_color="red" if alarm == "ALARM" else "gray",
        delta_arrow="off",
        help=f"CloudWatch alarm {DLQ_NOT_EMPTY.name}: {DLQ_NOT_EMPTY.description}",
    )
    cells[2].metric("accepted/s", accepted if traffic.get("running") else "-")
    cells[3].metric("committed/s", "?" if snapshot.committed is None else commits)


def replication(snapshot: Snapshot) -> None:
    status = snapshot.status or {}
    st.caption(control_plane(snapshot))
    rows = [
        {
            "node": name,
            "role": node["role"],
            "up": "up" if node["up"] else "DOWN",
            "replication": _replication(node, status.get("replication", "-")),
            "lag (B)": _text(node.get("lag_bytes")),  # the port: in the components' endpoint
        }
        for name, node in sorted(status.get("nodes", {}).items())
    ]
    table(rows)


def table(rows: list[dict[str, Any]]) -> None:
    """A static table, drawn as HTML: its cells wrap (`layout.PROJECTOR`) where the grid of
    `st.dataframe` cut them at a projector's width (`po…`, `127.0.0.1:1…`)."""
    st.table(pd.DataFrame(rows), hide_index=True)


def control_plane(snapshot: Snapshot) -> str:
    """What the Aurora control plane stand-in is doing, and since when, in one line."""
    plane = (snapshot.status or {}).get("control_plane")
    if not plane or not snapshot.healthy("control-plane"):
        return (
            "control plane: not running (its keeper restarts it; else `make up`): nobody fails "
            "a lost writer over meanwhile"
        )
    return describe(plane)


def components(snapshot: Snapshot) -> None:
    """`sandbox status`'s component table: health, pid, memory, endpoint."""
    rows = [
        {
            "component": c["name"],
            "health": "up" if c["healthy"] else "DOWN",
            "pid": _text(c["pid"]),
            "memory (MiB)": _text(c["memory_mib"] and round(c["memory_mib"])),
            "endpoint": c["endpoint"],
        }
        for c in (snapshot.status or {}).get("components", [])
    ]
    table(rows)
    if note := restored(snapshot.status or {}):
        st.caption(note)


def restored(status: dict[str, Any]) -> str | None:
    """What the SQS stand-in's journal has put back into a LocalStack that died, if anything."""
    count = status.get("restored_with_localstack", 0)
    if not count:
        return None
    return (
        f"LocalStack died with orders in it: {count} acknowledged order(s) restored to the "
        f"queue or the DLQ from the SQS journal (nothing lost; `{hint('events')}`)"
    )


def _replication(node: dict[str, Any], mode: str) -> str:
    """A reader's streaming state and sync state; the writer's configured mode."""
    if node["role"] != "reader":
        return mode
    return f"{node.get('state', 'not streaming')} / {node.get('sync', '-')}"


def errors(snapshot: Snapshot) -> None:
    """The traffic's errors by kind (HTTP status, or why there was no answer)."""
    kinds = (snapshot.traffic or {}).get("errors", {})
    if not kinds:
        st.caption("No errors from the traffic.")
        return
    st.caption(f"{sum(kinds.values())} in all")
    table([{"kind": kind, "count": count} for kind, count in kinds.items()])


def job(current: Job | None) -> None:
    """The running (or last) long action and how it ended."""
    if current is None:
        return
    if current.running:
        step = current.progress.get("step")
        sent, total = current.progress.get("sent"), current.progress.get("total")
        detail = f" - {step}" if step else ""
        detail += f", {sent}/{total} orders sent" if total else ""
        elapsed = time.time() - current.started
        st.info(f"Running: {current.name}{detail} ({elapsed:.0f} s)", icon="⏳")
    elif current.error:
        st.error(f"{current.name} failed: {current.error}")
    else:
        took = (current.finished or current.started) - current.started
        st.success(f"{current.name}: {current.result} (took {took:.1f} s)")


def scoreboard(report: dict[str, Any] | None, background: float | None) -> None:
    """The RPO scoreboard of the current or last drill (`sandbox.drills.drill.last()`), small
    enough to share the first screen at 1280x720 with the picture and the depth chart: four
    figures a row (seven cut their labels: `queue: s…`), the rest of each path in a line.

    ``background``: the rate of the traffic running now (`drill.background_rate`), said beside a
    running drill; a finished one says what its report recorded."""
    if report is None:
        st.markdown("**RPO scoreboard**: no drill yet (run one from the sidebar)")
        return
    if report.get("status") == "running":
        started = time.strftime("%H:%M:%S", time.localtime(report["started"]))
        st.info(
            f"Drill running since {started}: {report['fault']}, {report['count']} per path"
            + _beside(background)
        )
        return
    if report.get("status") == "failed":
        st.error(f"The last drill ({report['fault']}) failed: {report['error']}")
        return
    st.markdown(
        f"**RPO scoreboard**: {report['fault']}, {report['count']} per path at "
        f"{report['rate']:g}/s, {report['replication']} replication, "
        f"{time.strftime('%H:%M:%S', time.localtime(report['started']))}"
    )
    beside = report.get("background_rate")
    cells = st.columns(4)
    cells[0].metric("RTO (s)", _seconds(report["rto_seconds"]))
    cells[1].metric(
        "peak depth" if beside is None else "peak + traffic",
        report["peak_queue_depth"],
        help="The queue's depth (visible + in flight) at its highest during the drill"
        + ("" if beside is None else f", counting the background traffic's orders ({beside:g}/s)"),
    )
    cells[2].metric("drain (s)", _seconds(report["drain_seconds"]))
    cells[3].metric("redriven", report["redriven"], help="messages redriven from the DLQ")
    for path in report["paths"]:
        cells = st.columns(4)
        cells[0].metric(f"{path['path']}: sent", path["sent"])
        cells[1].metric("committed", path["committed_once"])
        cells[2].metric("lost", path["lost"], help="acknowledged but not stored")
        cells[3].metric("duplicates", path["duplicates"])
        accounted = PathReport(**path).balanced
        st.caption(
            f"{path['path']}: {path['accepted']} accepted, {path['in_dlq']} in the DLQ, "
            f"{path['queued']} still queued, {path['client_errors']} client error(s); "
            + ("the accounting adds up" if accounted else "THE ACCOUNTING DOES NOT ADD UP")
        )
    for note in report.get("notes", []):
        st.caption(f"note: {note}")


def _beside(background: float | None) -> str:
    if background is None:
        return ""
    return (
        f"; background traffic ({background:g} orders/s) runs beside it: the queue's depth, "
        "and the drill's peak, count its orders too"
    )


def _text(value: object) -> str:
    """A cell as text: a column mixes figures and "—" for none (Arrow wants one type a column;
    a table's cell is markdown, where "-" alone is a list's bullet)."""
    return "—" if value is None else str(value)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
