"""What `sandbox up`'s options give a new stack: the function timeout follows AWS's 6x rule
unless one is given (`sandbox.spec.queue.function_timeout_for`)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sandbox import cli, stack
from sandbox.stack import serve


class Captured(Exception):
    """Raised by the stand-in `stack.up`: the options are all this test needs."""


@pytest.fixture
def given(monkeypatch: pytest.MonkeyPatch, tmp_path) -> list[stack.Options]:
    seen: list[stack.Options] = []

    def up(options: stack.Options, report, directory=None):
        seen.append(options)
        raise Captured

    monkeypatch.setattr(stack, "up", up)  # what `sandbox up` calls
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


@pytest.mark.parametrize(
    ("variables", "receives", "visibility", "timeout"),
    [
        ({}, 25, 6, 1),  # the guidance's budget
        ({"SANDBOX_MAX_RECEIVE_COUNT": "5", "SANDBOX_VISIBILITY_TIMEOUT": "2"}, 5, 2, 1),
        ({"SANDBOX_VISIBILITY_TIMEOUT": "30"}, 25, 30, 5),  # the 6x rule, as `sandbox up`'s
        ({"SANDBOX_MAX_RECEIVE_COUNT": ""}, 25, 6, 1),  # the file's empty default
    ],
)
def test_the_compose_files_queue_variables_give_a_new_stack_its_retry_budget(
    monkeypatch: pytest.MonkeyPatch, variables, receives, visibility, timeout
):
    for name in serve.QUEUE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    options = serve.queue_options(stack.Options(runtime="compose"))
    assert options.queue.max_receive_count == receives
    assert options.queue.visibility_timeout_seconds == visibility
    assert options.runner.function_timeout_seconds == timeout


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "many"])
def test_a_queue_variable_that_is_not_a_whole_number_is_refused(
    monkeypatch: pytest.MonkeyPatch, value
):
    monkeypatch.setenv("SANDBOX_MAX_RECEIVE_COUNT", value)
    with pytest.raises(ValueError, match="SANDBOX_MAX_RECEIVE_COUNT must be a whole number"):
        serve.queue_options(stack.Options(runtime="compose"))
