"""`sandbox chaos` without a stack: the schedule, the kinds a runtime can take, the account."""

from __future__ import annotations

import signal

import pytest

from sandbox.drills import chaos, drill
from sandbox.drills.targets import Commit
from sandbox.ops import faults
from sandbox.ops.load import Sent

NATIVE = chaos.kinds_on("native")


def test_the_same_seed_gives_the_same_faults_in_the_same_order() -> None:
    first = chaos.schedule(7, 4, 30, NATIVE)
    assert first == chaos.schedule(7, 4, 30, NATIVE)
    assert first == chaos.schedule(7, 4, 30, reversed(NATIVE))  # the kinds' order is no input
    assert [p.fault for p in first] != [p.fault for p in chaos.schedule(8, 4, 30, NATIVE)]


def test_a_fault_about_every_interval_while_the_traffic_runs() -> None:
    plan = chaos.schedule(1, 3.5, 30, NATIVE)
    assert [p.index for p in plan] == [1, 2, 3, 4, 5, 6]  # at 30 .. 180 s, traffic until 210
    for planned in plan:
        assert abs(planned.at - 30 * planned.index) <= 30 * chaos.JITTER + 0.05
        assert planned.at < 3.5 * 60
    assert [p.at for p in plan] == sorted(p.at for p in plan)
    assert len(chaos.schedule(1, 3, 30, NATIVE)) == 5  # none at the very end: 180 s
    assert chaos.schedule(1, 1, 59, NATIVE)[0].index == 1


def test_every_kind_comes_once_before_any_comes_twice() -> None:
    kinds = ("writer-killed", "reader-killed", "proxy-killed")
    plan = [p.fault for p in chaos.schedule(3, 10, 30, kinds)]
    assert len(plan) == 19
    for deal in range(0, 18, 3):
        assert sorted(plan[deal : deal + 3]) == sorted(kinds)


def test_compound_faults_are_kinds_of_their_own_when_their_parts_are() -> None:
    assert "writer-killed-while-rejoining" in NATIVE
    assert chaos.COMPOUNDS["localstack-and-writer-killed"] == ("localstack-killed", "writer-killed")
    assert ("localstack-and-writer-killed" in NATIVE) == ("localstack-killed" in faults.UNANNOUNCED)
    planned = {p.fault for p in chaos.schedule(5, 10, 30, NATIVE)}
    assert planned == set(NATIVE)  # 19 faults: every kind at least once


def test_localstack_and_the_writer_together_once_localstack_can_be_killed(monkeypatch) -> None:
    killed = faults.Unannounced("aws", signal.SIGKILL, "SIGKILL LocalStack", ("queue-restored",))
    monkeypatch.setitem(faults.UNANNOUNCED, "localstack-killed", killed)
    kinds = chaos.kinds_on("native")
    assert {"localstack-killed", "localstack-and-writer-killed"} <= set(kinds)


def test_partitions_only_on_compose() -> None:
    for partition in faults.PARTITIONS:
        assert partition not in NATIVE
        assert partition in chaos.kinds_on("compose")
        with pytest.raises(ValueError, match="needs a network between the servers"):
            chaos.check_kinds([partition], "native")


def test_kinds_are_checked_and_put_in_one_order() -> None:
    assert chaos.check_kinds(["reader-killed", "proxy-killed", "reader-killed"], "native") == (
        "proxy-killed",
        "reader-killed",
    )
    with pytest.raises(ValueError, match="unknown fault 'crash'"):
        chaos.check_kinds(["crash"], "native")
    with pytest.raises(ValueError, match="no fault kinds"):
        chaos.check_kinds([], "native")


@pytest.mark.parametrize(
    ("minutes", "rate", "interval", "said"),
    [
        (0, 10, 30, "minutes"),
        (chaos.MAX_MINUTES + 1, 10, 30, "minutes"),
        (3, 0, 30, "rate"),
        (3, chaos.MAX_RATE + 1, 30, "rate"),
        (3, 10, 1, "interval"),
        (1, 10, 60, "leaves no fault"),
    ],
)
def test_a_run_out_of_bounds_is_refused(minutes, rate, interval, said) -> None:
    with pytest.raises(ValueError, match=said):
        chaos.check(minutes, rate, interval)


def sent(order_id: str, status: int, at: float, attempts: int = 1) -> Sent:
    return Sent(order_id, status, sent_at=at, answered_at=at + 0.1, attempts=attempts)


def test_the_account_counts_orders_and_a_retried_order_once() -> None:
    ledger = [
        sent("c-1", 202, 10.0),
        sent("c-2", 202, 11.0, attempts=3),  # retried until acknowledged: one order
        sent("c-3", 202, 12.0),  # acknowledged, never stored
        sent("c-4", 202, 13.0),  # committed twice
        sent("c-5", 0, 14.0, attempts=7),  # no answer after every retry
        sent("c-6", 202, 15.0),  # parked
        sent("c-7", 202, 16.0),  # still queued
    ]
    rows = {"c-1": Commit(), "c-2": Commit(), "c-4": Commit(rows=2), "c-5": Commit()}
    path = drill.account("queue", ledger, rows, {"c-6"}, 1, None, "c-")
    assert (path.sent, path.accepted, path.client_errors) == (7, 6, 1)
    assert (path.committed_once, path.duplicates, path.in_dlq) == (2, 1, 1)
    assert (path.queued, path.lost, path.errored_but_committed) == (1, 1, 1)
    assert path.retried == 2 and path.unexpected == 0


def test_each_fault_counts_the_errors_sent_until_the_stack_was_whole() -> None:
    ledger = [
        sent("a", 202, 99.0),
        sent("b", 0, 100.5),
        sent("c", 202, 101.0, attempts=2),
        sent("d", 503, 104.0),
        sent("e", 0, 109.0),
        sent("f", 0, 130.0),
    ]
    whole = chaos.FaultRow(1, "api-killed", 100.0, at_s=100.0, at=100.0, whole_after_s=5.0)
    never = chaos.FaultRow(2, "writer-killed", 120.0, at_s=120.0, at=120.0)
    not_done = chaos.FaultRow(3, "reader-killed", 140.0)
    chaos.meanwhile([whole, never, not_done], ledger)
    assert (whole.client_errors, whole.retried) == (2, 1)  # b and d; c
    assert (never.client_errors, never.retried) == (1, 0)  # f: until the last answer
    assert (not_done.client_errors, not_done.retried) == (0, 0)


def report(**account: int) -> chaos.ChaosReport:
    counts = dict.fromkeys(
        (
            "sent",
            "acknowledged",
            "committed_once",
            "duplicates",
            "in_dlq",
            "still_queued",
            "lost",
            "client_errors",
            "errored_but_committed",
            "retried",
            "unexpected",
        ),
        0,
    )
    done = chaos.ChaosReport(
        seed=1,
        minutes=1,
        rate=10,
        interval=20,
        kinds=["writer-killed"],
        runtime="native",
        replication="sync",
        prefix="chaos-x",
        started=0.0,
        planned=[chaos.Planned(1, 20.0, "writer-killed")],
        faults=[chaos.FaultRow(1, "writer-killed", 20.0, 20.0, 20.0, ["n1"], 7.5)],
        account=chaos.Account(**(counts | account)),
        drained=True,
        whole_at_end=True,
    )
    return done


def test_a_run_fails_on_a_loss_a_duplicate_or_a_stack_not_whole() -> None:
    assert report(sent=10, acknowledged=10, committed_once=10).ok
    assert report(in_dlq=1).ok  # reported, not a loss: a redrive commits it
    assert report(lost=1).problems == ["1 acknowledged order(s) lost"]
    assert report(duplicates=2).problems == ["2 order(s) committed more than once"]
    broken = report()
    broken.whole_at_end, broken.not_whole = False, ["proxy down"]
    assert broken.problems == ["not whole at the end: proxy down"]
    slow = report()
    slow.faults[0].whole_after_s = None
    assert not slow.ok and "not whole within" in slow.problems[0]
    stuck = report(still_queued=3)
    stuck.drained = False  # "still queued" is not settled: it may be lost
    assert stuck.problems == ["the queue did not drain within 600 s of the traffic's end"]
    assert '"ok": true' in report().to_json()
