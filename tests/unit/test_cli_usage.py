"""The CLI's answers to bad usage and to Ctrl-C (issue 31), through its real entry point `main`:
a usage error is one line and exit 2, whether click finds it or a command does; a drill refuses
what it cannot do before it draws anything; Ctrl-C exits 130 and says what was done and how the
stack stands. Faked: the stack (no stack needed), and the drill or failover being interrupted."""

from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

import pytest

from sandbox.cli import main
from sandbox.drills import chaos
from sandbox.drills import drill as drills
from sandbox.drills.targets import local
from sandbox.drills.targets.local import LocalTarget
from sandbox.ops import failover, faults
from sandbox.platform.state import NotRunning

# (sandbox.cli's `app` and `drills` names are the Typer app and a module's: these are the modules)
cli_app, cli_drills, cli_failover, cli_stack = (
    importlib.import_module(f"sandbox.cli.{name}")
    for name in ("app", "drills", "failover", "stack")
)
STANDS = "The stack is not whole: n2 down; the control plane repairs it by itself."


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str, width=80):
    """`sandbox ARGS` as the shell runs it, ``width`` columns wide: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["sandbox", *args])
    monkeypatch.setattr(cli_app.console, "_width", width)
    with pytest.raises(SystemExit) as done:
        main()
    out, err = capsys.readouterr()
    return done.value.code, out, err


@pytest.fixture
def native(tmp_path, monkeypatch):
    """A native stack as the commands load it, with nothing behind it; `chaos.standing` (how the
    stack stands) says what a Ctrl-C should report."""
    state = SimpleNamespace(
        runtime="native",
        replication="sync",
        writer=SimpleNamespace(name="n1"),
        path=lambda *parts: tmp_path.joinpath(*parts),
    )
    for module in (cli_app, cli_drills, cli_failover, cli_stack):
        monkeypatch.setattr(module, "load", lambda: state)
    monkeypatch.setattr(chaos, "standing", lambda state: STANDS)

    class Bare(LocalTarget):  # the real checks, without the SQS client a real stack needs
        def __init__(self, state):
            self.state = state

    monkeypatch.setattr(local, "LocalTarget", Bare)  # `drill.run` imports it when it runs
    return state


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("drill", "--fault", "crsh"), "--fault must be one of none, crash"),
        (("drill", "--path", "sideways"), "--path must be"),
        (("drill", "--target", "mars"), "--target must be local or aws"),
        (("drill", "--stack", "X"), "--stack and --region are for --target aws"),
        (("drill", "--count", "0"), "--count"),
        (("failover", "--mode", "crsh"), "--mode must be crash, switchover or hang"),
        (("failover", "--mode", "switchover", "--lag", "2"), "--lag is for --mode crash"),
        (("replication", "sometimes"), "MODE must be sync or async"),
        (("up", "--pace", "slow"), "--pace must be one of fast, aurora"),
        (("up", "--runtime", "vm"), "--runtime must be"),
        (("up", "--queue-type", "lifo"), "--queue-type must be"),
        (("up", "--replication", "maybe"), "--replication must be"),
        (("up", "--consumer", "nope"), "--consumer must be one of"),
        (("dashboard", "--port", "8080"), "--port is for --target aws"),
        (("dashboard", "--target", "aws"), "--target aws needs --stack NAME"),
        (("frobnicate",), "No such command"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(monkeypatch, capsys, args, said):
    for module in (cli_app, cli_drills, cli_failover, cli_stack):
        monkeypatch.setattr(module, "load", _no_stack_needed)
    code, out, err = run(monkeypatch, capsys, *args)
    assert code == 2, err
    assert err.startswith("error: ") and said in err
    assert len(err.strip().splitlines()) == 1
    assert "--help`)" in err  # where to read more, spelled as it runs here
    assert out == ""


def _no_stack_needed():
    raise AssertionError("a usage error is found before the stack is read")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("drill", "--fault", "writer-partitioned"), "needs a network between the servers"),
        (("drill", "--fault", "writer-killed", "--outage", "3"), "--outage is not for"),
        (("drill", "--fault", "long-outage", "--path", "direct"), "it needs the queue path"),
    ],
)
def test_a_drill_refuses_before_it_draws_anything(monkeypatch, capsys, native, args, said):
    code, out, err = run(monkeypatch, capsys, *args)
    assert code == 2, err
    assert said in err and len(err.strip().splitlines()) == 1
    assert out == ""  # no "sending 0/?" bar, not even the blank line a closed bar leaves


def test_a_partition_is_refused_natively_before_anything_is_done(monkeypatch, capsys, native):
    monkeypatch.setattr(faults, "unannounced", _no_stack_needed)
    code, out, err = run(monkeypatch, capsys, "fault", "writer-partitioned")
    assert code == 2
    assert "needs a network between the servers" in err and "fault writer-partitioned" in err
    assert out == ""


def test_ctrl_c_in_a_drill_says_how_far_it_got_and_how_the_stack_stands(
    monkeypatch, capsys, native
):
    def interrupted_drill(
        state, fault, path, count, rate, outage, redrive, progress, client, background
    ):
        progress("paths", {"paths": ["queue", "direct"]})
        for _ in range(340):
            progress("sent", {"path": "queue", "status": 202})
        progress("fault", {"fault": fault})
        raise KeyboardInterrupt

    monkeypatch.setattr(drills, "run", interrupted_drill)
    code, _, err = run(monkeypatch, capsys, "drill", "--count", "500")
    assert code == 130
    assert err == (
        "interrupted after 340 of 1000 orders, during the fault (crash); the drill's orders are "
        f"not accounted for. {STANDS}\n"
    )


def test_ctrl_c_in_a_load_says_how_many_orders_were_answered(monkeypatch, capsys, native):
    cli_orders = importlib.import_module("sandbox.cli.orders")
    monkeypatch.setattr(cli_orders, "load", lambda: native)

    def interrupted_load(state, count, rate, max_seconds, progress):
        for _ in range(209):
            progress(None)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_orders, "send_orders", interrupted_load)
    code, _, err = run(monkeypatch, capsys, "load", "--count", "1000")
    assert (code, err) == (130, f"interrupted after 209 of 1000 orders were answered. {STANDS}\n")


def test_ctrl_c_in_a_failover_names_it(monkeypatch, capsys, native):
    monkeypatch.setattr(failover, "failover", _interrupt)
    code, _, err = run(monkeypatch, capsys, "failover", "--outage", "20")
    assert code == 130
    assert err == f"interrupted during the failover (crash) of the writer n1. {STANDS}\n"


def test_ctrl_c_in_any_other_command_still_says_how_the_stack_stands(monkeypatch, capsys, native):
    import sandbox.ops.status

    monkeypatch.setattr(sandbox.ops.status, "collect", _interrupt)
    code, _, err = run(monkeypatch, capsys, "status")
    assert (code, err) == (130, f"interrupted. {STANDS}\n")


def test_ctrl_c_with_no_stack_says_so(monkeypatch, capsys, native):
    def none():
        raise NotRunning("no stack")

    monkeypatch.setattr(cli_app, "load", none)
    monkeypatch.setattr(failover, "failover", _interrupt)
    code, _, err = run(monkeypatch, capsys, "failover")
    assert (code, err) == (
        130,
        "interrupted during the failover (crash) of the writer n1. There is no stack.\n",
    )


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_chaos_says_its_own_summary_once(monkeypatch, capsys, native):
    said = f"interrupted 19 s in: 1 of 5 fault(s) made. {STANDS}"

    def interrupted_run(*args, **kwargs):
        raise chaos.Interrupted(said)

    monkeypatch.setattr(chaos, "run", interrupted_run)
    code, _, err = run(monkeypatch, capsys, "chaos", "--minutes", "1")
    assert (code, err) == (130, said + "\n")


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        ([], "The stack is whole."),
        (
            ["n2 down", "the control plane is rejoining"],
            "The stack is not whole: n2 down; the control plane is rejoining; the control plane "
            "repairs it by itself",
        ),
    ],
)
def test_how_the_stack_stands_is_said_in_one_place(monkeypatch, missing, said):
    monkeypatch.setattr(chaos, "whole", lambda state: missing)
    assert chaos.standing(object()).startswith(said)
