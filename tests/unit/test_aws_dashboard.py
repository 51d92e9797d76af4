"""What the AWS dashboard reads through `AwsTarget` (against botocore's Stubber, in the style of
`test_aws_drill.py`, whose fixtures `conftest.py` shares), and how `sandbox dashboard --target
aws` refuses.

Nothing here reaches AWS: the CLI's failures are made on loopback or with no credentials at all.
"""

from __future__ import annotations

import json
import socket
import sys

import pytest

from sandbox import cli
from sandbox.standins.sqs import Depth
from tests.unit.test_aws_drill import OUTPUTS, depths_answered, dlq_peeked, stack_described

SENT_MS, FIRST_MS = 1_700_000_000_000, 1_700_000_060_000


def test_depths_split_visible_and_in_flight_for_queue_and_dlq(stubs, target) -> None:
    stack_described(stubs)
    depths_answered(stubs, queue=(3, 2), dlq=(1, 4))
    assert target.depths() == (Depth(visible=3, in_flight=2), Depth(visible=1, in_flight=4))


def test_dlq_messages_carry_what_sqs_gives_and_where_the_error_is(stubs, target) -> None:
    stack_described(stubs)
    attributes = {
        "ApproximateReceiveCount": "26",
        "ApproximateFirstReceiveTimestamp": str(FIRST_MS),
        "SentTimestamp": str(SENT_MS),
        "MessageGroupId": "o-1",
    }
    messages = [
        {
            "MessageId": "m1",
            "ReceiptHandle": "r1",
            "Body": json.dumps({"order_id": "o-1", "customer_id": 999999999}),
            "Attributes": attributes,
        },
        {"MessageId": "m2", "ReceiptHandle": "r2", "Body": "not an order"},
    ]
    dlq_peeked(stubs, messages)
    order, foreign = target.dlq_messages()
    assert (order.message_id, order.order_id, order.receives) == ("m1", "o-1", 26)
    assert (order.first_received, order.sent) == (FIRST_MS / 1000, SENT_MS / 1000)
    assert json.loads(order.body)["customer_id"] == 999999999
    assert order.attributes == attributes
    assert order.last_error == (
        'not kept by SQS: see "order failed" in the log of ' + OUTPUTS["ConsumerFunctionName"]
    )
    assert (foreign.order_id, foreign.receives, foreign.first_received) == ("?", 0, None)
    assert foreign.body == "not an order" and foreign.attributes == {}


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["sandbox", "dashboard", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    code = exited.value.code
    return code if isinstance(code, int) else 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "aws"], "--target aws needs --stack NAME"),
        (["--stack", "NearZeroRpo"], "--stack and --region are for --target aws"),
        (["--port", "18600"], "--port is for --target aws"),
        (["--target", "gcp"], "--target must be local or aws"),
    ],
)
def test_the_cli_refuses_bad_options_in_one_line(monkeypatch, capsys, args, message) -> None:
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2  # usage errors, as click's own
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def closed_port() -> int:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        return holder.getsockname()[1]  # nothing listens once it is closed


@pytest.fixture
def no_aws(monkeypatch, tmp_path) -> None:
    """No credentials from anywhere, and every AWS call sent to a closed loopback port."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def test_without_credentials_the_stack_cannot_be_read_one_line(monkeypatch, capsys, no_aws):
    code, err = run_cli(monkeypatch, capsys, "--target", "aws", "--stack", "NearZeroRpo")
    assert code == 1 and err.count("\n") == 1
    assert err == "error: cannot read stack NearZeroRpo: Unable to locate credentials\n"


def test_an_endpoint_that_does_not_answer_fails_in_one_line(monkeypatch, capsys, no_aws):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code, err = run_cli(
        monkeypatch, capsys, "--target", "aws", "--stack", "NearZeroRpo", "--region", "eu-west-1"
    )
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: cannot read stack NearZeroRpo: Could not connect to the endpoint")
