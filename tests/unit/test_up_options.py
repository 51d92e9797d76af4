"""What `sandbox up`'s options give a new stack: the function timeout follows AWS's 6x rule
unless one is given (`sandbox.queue.function_timeout_for`)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sandbox import cli, stack


class Captured(Exception):
    """Raised by the stand-in `stack.up`: the options are all this test needs."""


@pytest.fixture
def given(monkeypatch: pytest.MonkeyPatch, tmp_path) -> list[stack.Options]:
    seen: list[stack.Options] = []

    def up(options: stack.Options, report, directory=None):
        seen.append(options)
        raise Captured

    monkeypatch.setattr(cli.stack, "up", up)
    monkeypatch.setenv("SANDBOX_RUN_DIR", str(tmp_path))  # no stack there: a new one
    return seen


@pytest.mark.parametrize(
    ("args", "visibility", "timeout"),
    [
        ([], 6, 1),
        (["--visibility-timeout", "30"], 30, 5),
        (["--visibility-timeout", "30", "--function-timeout", "2.5"], 30, 2.5),
        (["--consumer", "guidance-sample"], 5, 5),  # the sample's own: 5 s = 5 s
    ],
)
def test_the_function_timeout_is_derived_from_the_visibility_timeout(
    given, args, visibility, timeout
):
    CliRunner().invoke(cli.app, ["up", *args])
    (options,) = given
    assert options.queue.visibility_timeout_seconds == visibility
    assert options.runner.function_timeout_seconds == timeout
