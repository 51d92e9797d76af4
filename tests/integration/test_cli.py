"""The `sandbox` command as a user runs it (a real process, against the test stack)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sandbox import stack
from sandbox.drills import drill as drills
from sandbox.standins.aurora import database
from tests.conftest import PATIENCE, wait_drained, wait_for

SANDBOX = str(Path(sys.executable).parent / "sandbox")


def sandbox(live, *args: str, run_dir: str | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"SANDBOX_RUN_DIR": run_dir or live.run_dir, "COLUMNS": "200"}
    return subprocess.run(
        [SANDBOX, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE,  # a bound: no command here takes near it
        stdin=subprocess.DEVNULL,  # as in CI: nobody there to answer a question
    )


def test_up_again_is_a_no_op_that_prints_status(live):
    pids = dict(live.pids)
    result = sandbox(live, "up", "--auto-ports")
    assert result.returncode == 0, result.stderr
    assert "already up" in result.stdout
    assert stack.load().pids == pids


def orders_in_table(live) -> int:
    with database.connect(live, live.writer.name) as conn:
        return conn.execute("SELECT count(DISTINCT order_id) FROM orders").fetchone()[0]


def test_status_reports_roles_replication_and_depth(live):
    before = orders_in_table(live)
    report = json.loads(sandbox(live, "status", "--json").stdout)
    after = orders_in_table(live)  # nothing deletes orders: the count grows, if at all
    assert all(c["healthy"] for c in report["components"])
    assert report["writer"] == "n1" and report["readers"] == ["n2"]
    assert report["nodes"]["n2"]["state"] == "streaming"
    assert report["nodes"]["n2"]["sync"] == "sync"
    assert set(report["queues"]) == {"queue", "dlq"}
    # The DLQ's CloudWatch alarm exists on LocalStack (its state depends on earlier tests).
    assert set(report["alarms"]) == {"dlq-not-empty"}
    assert report["alarms"]["dlq-not-empty"] in ("OK", "ALARM", "INSUFFICIENT_DATA")
    text = sandbox(live, "status").stdout
    assert "alarm dlq-not-empty:" in text and "unreachable" not in text
    assert before <= sum(node["committed"] for node in report["nodes"].values()) <= after


def test_send_and_load_print_what_the_api_said(live):
    sent = sandbox(live, "send", "--order-id", f"cli-{uuid.uuid4().hex[:6]}")
    assert sent.returncode == 0 and sent.stdout.startswith("202 ")
    refused = sandbox(live, "send", "--amount", "-3")
    assert refused.returncode == 1 and refused.stdout.startswith("400 ")
    loaded = sandbox(live, "load", "--count", "20", "--rate", "40")
    assert loaded.returncode == 0
    assert "accepted 20, rejected 0" in loaded.stdout


def test_down_refuses_while_messages_are_queued(live):
    stack.stop(live, "consumer")
    try:
        prefix = f"held-{uuid.uuid4().hex[:6]}"
        for i in range(3):
            assert sandbox(live, "send", "--order-id", f"{prefix}-{i}").returncode == 0
        refused = sandbox(live, "down")
        assert refused.returncode == 1
        assert "3 message(s) in the queue" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert all(c for c in stack.health(live).values() if c)  # nothing was stopped
    finally:
        stack.start(live, "consumer")
    assert len(wait_drained(live, prefix, 3)) == 3


def test_bad_usage_is_one_line_and_exit_2(live, tmp_path):
    cases = [
        (("load", "--count", "-5"), "--count", 2),
        (("up", "--queue-type", "lifo"), "fifo or standard", 2),
        (("frobnicate",), "No such command", 2),
        (("token",), "run `make up` first", 1),  # not usage: there is no stack
        (("failover", "--mode", "switchover", "--lag", "2"), "--lag is for --mode crash", 2),
        (
            ("drill", "--fault", "lagging-crash", "--target", "aws", "--stack", "X"),
            "not possible",
            2,
        ),
        # natively refused before a single order, and before any progress bar (issue 31)
        (("drill", "--fault", "writer-partitioned"), "needs a network between the servers", 2),
    ]
    for args, expected, code in cases:
        run_dir = str(tmp_path) if args == ("token",) else None
        result = sandbox(live, *args, run_dir=run_dir)
        assert result.returncode == code, (args, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == "", (args, result.stdout)


def test_ctrl_c_in_a_drill_says_how_far_it_got_and_how_the_stack_stands(live):
    """Exit 130 and one line: what was sent, and the stack's state as `chaos.standing` says it
    (here whole: the drill's fault is none, so the rest of the suite finds the stack as it was)."""
    began = time.time()
    drill = subprocess.Popen(
        [SANDBOX, "drill", "--fault", "none", "--path", "queue", "--count", "2000", "--rate", "20"],
        env=os.environ | {"SANDBOX_RUN_DIR": live.run_dir, "COLUMNS": "80"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal sends it, even where this test's own SIGINT came in ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_for(
            lambda: (
                (drills.last(live) or {}).get("started", 0) >= began
                and drills.last(live)["status"] == "running"
            ),
            "the drill running",
        )
        drill.send_signal(signal.SIGINT)
        _, err = drill.communicate(timeout=PATIENCE)
    finally:
        if drill.poll() is None:
            drill.kill()
            drill.wait()
    assert drill.returncode == 130, err
    assert re.fullmatch(
        r"interrupted after \d+ of 2000 orders, while sending; the drill's orders are not "
        r"accounted for\. The stack is (whole|not whole: .+)\.\n",
        err,
    ), err
    wait_for(lambda: stack.queued(live)[0] == 0, "the drill's orders drained")
