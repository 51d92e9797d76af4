"""What README's Troubleshooting and the workshop's "If it goes wrong" boxes quote is what the
tools say: a host searches the docs for the line on the screen."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sandbox.cli import app, orders
from sandbox.ops import dlq
from sandbox.spec.errors import StackError
from sandbox.stack import _check_ports

ROOT = Path(__file__).resolve().parents[2]


def test_a_default_port_in_use_is_said_as_the_docs_quote_it():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(StackError) as refused:
            _check_ports({"n1": port})
    said = str(refused.value)
    assert said.startswith(f"port {port} (n1) is in use: ")
    assert re.search(r"`\S*sandbox up --auto-ports`", said)  # the workshop's way out, runnable
    readme = (ROOT / "README.md").read_text()
    assert "**`port 15432 (n1) is in use`**" in readme and "`sandbox up --auto-ports`" in readme


def test_the_fix_before_anything_has_failed_says_nothing_to_add(monkeypatch):
    """The workshop's box: "`customer add --parked` says "nothing to add": the order has not
    failed yet"."""
    monkeypatch.setattr(orders, "load", lambda: None)
    monkeypatch.setattr(dlq, "fix_parked", lambda state, name: [])
    done = CliRunner().invoke(app, ["customer", "add", "--parked"])
    assert done.exit_code == 0
    assert done.stdout.startswith("nothing to add: no order in the DLQ or failing in the queue")
    assert (
        '`customer add --parked` says "nothing to add"' in (ROOT / "docs/workshop.md").read_text()
    )
