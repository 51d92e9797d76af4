"""The AWS page (`dashboard/aws_app.py`) with a fake target in place of `AwsTarget`, and
`sandbox dashboard --target aws` serving it in the foreground until Ctrl-C.

No stack, local or deployed, is needed: the page reads only through the target, and the served
page is checked for health only (it never gets to read the stack).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError
from streamlit.testing.v1 import AppTest

from dashboard import aws_live, clicks, jobs
from sandbox.ops.dlq import Parked, from_sqs
from sandbox.platform.state import PROJECT_DIR
from sandbox.standins.dashboard import REGION_ENV, STACK_ENV
from sandbox.standins.sqs import Depth
from tests.conftest import PATIENCE, wait_for
from tests.dashboard.conftest import notices, settle_jobs

APP = Path(__file__).resolve().parents[2] / "dashboard" / "aws_app.py"
STACK = "NearZeroRpo"
SENT_MS = 1_700_000_000_000


def message(order_id: str, receives: int, body: str | None = None) -> Parked:
    attributes = {
        "ApproximateReceiveCount": str(receives),
        "SentTimestamp": str(SENT_MS),
        "MessageGroupId": order_id,
    }
    raw = {
        "MessageId": f"id-{order_id}",
        "Body": body or json.dumps({"order_id": order_id, "customer_id": 999999999}),
        "Attributes": attributes,
    }
    return from_sqs(raw, receives=receives, last_error="see the consumer's log")


class FakeTarget:
    """What the page uses of `AwsTarget`, answering from memory and recording redrives."""

    stack = STACK
    name = f"aws {STACK} in eu-west-1"

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.redrives = 0
        self.parked = [message("o-1", 26), message("o-2", 27), message("x", 30, body="not json")]

    def depths(self) -> tuple[Depth, Depth]:
        if self.error:
            raise self.error
        return Depth(visible=3, in_flight=2), Depth(visible=len(self.parked), in_flight=0)

    def dlq_messages(self) -> list[Parked]:
        return list(self.parked)

    def redrive(self) -> int:
        self.redrives += 1
        moved, self.parked = len(self.parked), []
        return moved


@pytest.fixture
def fake(monkeypatch) -> FakeTarget:
    target = FakeTarget()
    connected: list[tuple[str, str]] = []

    def connect(stack: str, region: str) -> FakeTarget:
        connected.append((stack, region))
        return target

    monkeypatch.setattr(aws_live, "connect", connect)
    monkeypatch.setattr(jobs, "_current", None)  # this page's redrive, not another test's job
    monkeypatch.setenv(STACK_ENV, STACK)
    monkeypatch.setenv(REGION_ENV, "eu-west-1")
    yield target
    settle_jobs()
    assert set(connected) == {(STACK, "eu-west-1")}


def open_page() -> AppTest:
    clicks.forget()  # no notice left from another test (AppTest's sessions share one id)
    at = AppTest.from_file(str(APP), default_timeout=PATIENCE).run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def dlq_table(at: AppTest):
    return next(f.value for f in at.dataframe if "order id" in f.value.columns)


def test_the_page_shows_depths_a_chart_and_the_dlq(fake: FakeTarget):
    at = open_page()
    assert metrics(at) == {
        "queue: visible": "3",
        "queue: in flight": "2",
        "DLQ: visible": "3",
        "DLQ: in flight": "0",
    }
    (chart,) = at.get("vega_lite_chart")
    assert '"messages"' in chart.proto.spec
    assert any("approximate" in c.value and "GetQueueAttributes" in c.value for c in at.caption)
    table = dlq_table(at)
    assert list(table["order id"]) == ["o-1", "o-2", "?"]
    assert list(table["receives"]) == [26, 27, 30]
    assert set(table["last error"]) == {"see the consumer's log"}
    body, attributes = (json.loads(j.value) for j in at.json)
    assert body == {"order_id": "o-1", "customer_id": 999999999}
    assert attributes["ApproximateReceiveCount"] == "26"
    at.selectbox(key="dlq_choice").set_value("o-2").run()
    body, attributes = (json.loads(j.value) for j in at.json)
    assert body["order_id"] == "o-2" and attributes["MessageGroupId"] == "o-2"
    at.selectbox(key="dlq_choice").set_value("?").run()
    assert [c.value for c in at.code] == ["not json"]  # a body that is not JSON, as it is


def test_the_only_action_is_the_redrive(fake: FakeTarget):
    at = open_page()
    assert [b.key for b in at.button] == ["redrive"]
    assert not at.number_input and not at.checkbox and not at.text_input
    assert [s.key for s in at.selectbox] == ["dlq_choice"]  # which message to show, nothing else
    said = " ".join(c.value for c in at.sidebar.caption)
    assert f"sandbox drill --target aws --stack {STACK}" in said and "No purge" in said


def test_redrive_runs_in_the_background_and_shows_its_result(fake: FakeTarget):
    at = open_page()
    at.button(key="redrive").click().run()
    assert not at.exception, at.exception
    settle_jobs()
    at.run()
    assert fake.redrives == 1
    (done,) = at.success
    assert done.value.startswith("DLQ redrive: redrove 3 message(s) with SQS's move task")
    assert metrics(at)["DLQ: visible"] == "0"
    assert any(c.value == "The DLQ is empty." for c in at.caption)


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (
            RuntimeError("cannot read stack NearZeroRpo: Unable to locate credentials"),
            "cannot read stack NearZeroRpo: Unable to locate credentials",
        ),
        (
            ClientError(
                {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetQueueAttributes"
            ),
            "ClientError: An error occurred (Throttling) when calling the GetQueueAttributes "
            "operation: Rate exceeded",
        ),
    ],
)
def test_an_error_from_the_target_is_a_message_and_the_page_still_renders(
    fake: FakeTarget, error: Exception, shown: str
):
    fake.error = error
    at = open_page()
    assert [e.value for e in at.error] == [f"{fake.name}: {shown}"]
    assert at.title[0].value == "Near-zero-RPO sandbox on AWS"
    assert [b.key for b in at.button] == ["redrive"] and not at.metric


def test_without_a_stack_named_the_page_says_how_to_start_it(monkeypatch):
    monkeypatch.delenv(STACK_ENV, raising=False)
    at = open_page()
    assert any("sandbox dashboard --target aws --stack NAME" in t for t in notices(at))
    assert not at.button


def free_port() -> int:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        return holder.getsockname()[1]


# The CLI as a user runs it, but with the stack's one read made a no-op (there is no AWS here).
# "ignore-sigint" starts it as a shell without job control starts a background job (CI, nohup):
# with SIGINT ignored, which Python then leaves ignored instead of raising KeyboardInterrupt.
SERVE = """
import signal
import sys
from sandbox import cli
from sandbox.drills.targets.aws import AwsTarget
if sys.argv[2:] == ["ignore-sigint"]:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
AwsTarget.outputs = property(lambda self: None)
sys.argv = ["sandbox", "dashboard", "--target", "aws", "--stack", "Fake", "--port", sys.argv[1]]
cli.main()
"""


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).text == "ok"
    except httpx.TransportError:
        return False


@pytest.mark.parametrize(
    ("stop", "how"),
    [
        (lambda pid: os.killpg(pid, signal.SIGINT), ""),  # Ctrl-C: the whole foreground group
        (lambda pid: os.killpg(pid, signal.SIGINT), "ignore-sigint"),  # the same, in CI
        (lambda pid: os.kill(pid, signal.SIGTERM), ""),  # `kill` of the CLI alone: no orphan
    ],
    ids=["ctrl-c", "ctrl-c-sigint-ignored", "sigterm"],
)
def test_the_cli_serves_the_page_in_the_foreground_until_stopped(stop, how):
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port), *([how] if how else [])],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        env=os.environ | {"PYTHONUNBUFFERED": ""},  # a pipe's buffering, as a user's `| tee` has
    )
    try:
        wait_for(lambda: healthy(port) or child.poll() is not None, "the page answering")
        assert child.poll() is None, child.stdout.read() if child.stdout else ""
        stop(child.pid)
        output, _ = child.communicate(timeout=PATIENCE)  # until it has exited and said all
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == 0, output
    lines = output.splitlines()
    assert lines[0] == (
        f"dashboard for aws Fake in us-east-1 (read-only): http://127.0.0.1:{port}  "
        "(Ctrl-C stops it)"
    )
    assert lines[-1] == "dashboard stopped"
    assert not healthy(port), "Streamlit went with the CLI"
