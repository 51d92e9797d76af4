"""What the CLI prints at 80 columns (issue 31): nothing a user copies (an endpoint, a time, an
event code) is cut short, `status` says what its "committed here" counts, and a drill over
background traffic says so and labels its peak queue depth. The stack is faked: a canned
report, as `sandbox.ops.status.collect` and the events file give them."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

import sandbox.ops.status
from sandbox.drills import drill as drills
from sandbox.standins.aurora import events
from tests.unit.test_cli_usage import cli_app, cli_drills, cli_stack, run

LONG_PATH = "/home/someone/src/near-zero-rpo-sandbox/.run/control-plane.json"


def report() -> dict:
    """`status --json` of a stack just failed over: the reader committed 501, the writer 0."""
    endpoints = {
        "aws": "http://127.0.0.1:4566",
        "n1": "127.0.0.1:15432",
        "n2": "127.0.0.1:15433",
        "proxy": "127.0.0.1:16432",
        "api": "http://127.0.0.1:18080",
        "consumer": "orders.fifo",
        "control-plane": LONG_PATH,
        "dashboard": "http://127.0.0.1:18501",
    }
    return {
        "components": [
            {"name": name, "healthy": True, "pid": 1234567, "endpoint": where, "memory_mib": 50.0}
            for name, where in endpoints.items()
        ],
        "writer": "n2",
        "readers": ["n1"],
        "replication": "sync",
        "consumer": "sandbox",
        "nodes": {
            "n1": {"role": "reader", "up": True, "state": "streaming", "sync": "sync",
                   "lag_bytes": 0, "port": 15432, "committed": 501},
            "n2": {"role": "writer", "up": True, "port": 15433, "committed": 0},
        },
        "control_plane": {"phase": "watching", "since": time.time()},
        "control_plane_healthy": True,
        "queues": {"queue": {"visible": 0, "in_flight": 0}, "dlq": {"visible": 0, "in_flight": 0}},
        "alarms": {"dlq-not-empty": "OK"},
        "restored_with_localstack": 0,
    }  # fmt: skip


@pytest.fixture
def stack(monkeypatch, tmp_path):
    state = SimpleNamespace(runtime="native", path=lambda *parts: tmp_path.joinpath(*parts))
    for module in (cli_app, cli_drills, cli_stack):
        monkeypatch.setattr(module, "load", lambda: state)
    monkeypatch.setattr(sandbox.ops.status, "collect", lambda state: report())
    return state


def whole_on_one_line(value: str, out: str) -> bool:
    return any(value in line for line in out.splitlines())


def test_status_at_80_columns_keeps_every_endpoint_whole(monkeypatch, capsys, stack):
    code, out, _ = run(monkeypatch, capsys, "status")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    for row in report()["components"]:
        assert whole_on_one_line(row["endpoint"], out), row["endpoint"]


def test_status_keeps_the_endpoints_in_the_table_where_they_fit(monkeypatch, capsys, stack):
    code, out, _ = run(monkeypatch, capsys, "status", width=200)
    assert code == 0
    assert "endpoints:" not in out
    assert any(LONG_PATH in line and "control-plane" in line for line in out.splitlines())


def test_status_says_what_committed_here_counts(monkeypatch, capsys, stack):
    _, out, _ = run(monkeypatch, capsys, "status")
    assert "committed here" in out
    text = " ".join(out.split())  # the caption may wrap
    assert "committed here: the orders this node committed while it was the writer" in text


def test_events_at_80_columns_keep_times_and_codes_whole(monkeypatch, capsys, stack):
    said = [
        {
            "time": "2026-12-07T11:40:33.049+00:00",
            "code": "SANDBOX-CONTROL-PLANE",
            "message": "control plane watching (detection window 5 s)",
        },
        {
            "time": "2026-12-07T11:41:00.927+00:00",
            "code": "RDS-EVENT-0073",
            "message": "failover (crash) from n1 to n2 started, the writer not answering",
        },
    ]
    monkeypatch.setattr(events, "read", lambda state: said)
    code, out, _ = run(monkeypatch, capsys, "events")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    for event in said:
        assert whole_on_one_line(event["time"], out) and whole_on_one_line(event["code"], out)
    assert "window 5 s" in " ".join(out.split())  # the message wraps, whole


def drill_report(background: float | None) -> drills.DrillReport:
    path = drills.PathReport(
        path="queue", sent=60, accepted=60, client_errors=0, errors_from_s=None,
        errors_to_s=None, committed_once=60, duplicates=0, in_dlq=0, queued=0, lost=0,
        rpo_seconds=0.0, errored_but_committed=0, latency_ms={},
    )  # fmt: skip
    return drills.DrillReport(
        fault="crash", count=60, rate=20, replication="sync", started=0.0, fault_at=None,
        recovered_at=None, rto_seconds=None, peak_queue_depth=42, drain_seconds=None,
        redriven=0, paths=[path], background_rate=background,
    )  # fmt: skip


@pytest.mark.parametrize("background", [10.0, None])
def test_a_drill_over_background_traffic_says_so(monkeypatch, capsys, stack, background):
    monkeypatch.setattr(drills, "background_rate", lambda state: background)
    monkeypatch.setattr(drills, "run", lambda *args, **kwargs: drill_report(background))
    code, out, _ = run(monkeypatch, capsys, "drill", "--path", "queue", "--count", "60")
    assert code == 0
    text = " ".join(out.split())
    if background is None:
        assert "background" not in text and "peak queue depth: 42" in text
    else:
        assert "background traffic is running (10 orders/s" in text
        assert "peak queue depth (with the background traffic's): 42" in text


def test_background_traffic_is_what_runs_now(tmp_path):
    state = SimpleNamespace(path=lambda *parts: tmp_path.joinpath(*parts))
    assert drills.background_rate(state) is None  # never started
    traffic = {"rate": 10, "updated": time.time(), "finished": None}
    (tmp_path / "traffic.json").write_text(json.dumps(traffic))
    assert drills.background_rate(state) == 10.0
    (tmp_path / "traffic.json").write_text(json.dumps(traffic | {"finished": time.time()}))
    assert drills.background_rate(state) is None
