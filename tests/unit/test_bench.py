"""The benchmark's pure helpers: percentiles, ratios, loop accounting, runner log parsing, the
profiles' and the runtimes' figures."""

import contextlib
import json

import pytest

from bench import profiles as bench_profiles
from bench import runtimes as bench_runtimes
from bench import soak
from bench.drain import Drained, Invocation, parse_invocations
from bench.loops import Call, LoopResult, closed_loop
from bench.stats import rate, ratio, spread
from sandbox.drills import drill
from sandbox.drills.stats import latency, percentile
from sandbox.spec import profiles
from sandbox.spec.event_source import RunnerSettings
from sandbox.spec.queue import QueueSettings


def test_percentile_interpolates_between_ranks():
    values = [float(v) for v in range(1, 11)]  # 10 trials
    assert percentile(values, 0) == 1 and percentile(values, 100) == 10
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 95) == pytest.approx(9.55)  # not simply the maximum
    assert percentile([3.0], 99) == 3.0
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0  # order of the input does not matter


@pytest.mark.parametrize("q", [-1, 101])
def test_percentile_refuses_nonsense(q):
    with pytest.raises(ValueError):
        percentile([1.0], q)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_spread_and_latency_cuts():
    values = [0.1, 0.2, 0.3, 0.4]
    assert spread(values) == pytest.approx({"min": 0.1, "median": 0.25, "p95": 0.385, "max": 0.4})
    assert set(latency(values)) == {"p50", "p95", "p99"}


def test_rate_and_ratio_have_no_value_without_a_base():
    assert rate(100, 4.0) == 25 and rate(5, 0.0) is None
    assert ratio(50, 200) == 0.25
    assert ratio(None, 2) is None and ratio(1, 0) is None and ratio(1, None) is None


def test_closed_loop_makes_exactly_count_calls_and_counts_failures():
    @contextlib.contextmanager
    def worker():
        def call(index):
            if index % 5 == 0:
                raise RuntimeError("a failed call is a data point")
            return index % 2 == 0

        yield call

    result = closed_loop(worker, count=50, concurrency=4, max_seconds=60)
    assert len(result.calls) == 50 and not result.timed_out
    assert len(result.ok) == 20  # even indexes, minus the multiples of 10 that raised
    assert result.failed == 30


def test_parse_invocations_reads_only_the_runners_invocation_lines():
    lines = [
        json.dumps({"service": "runner", "message": "invocation", "ms": 12.5, "records": [{}, {}]}),
        json.dumps({"service": "consumer", "message": "order committed"}),
        json.dumps({"service": "runner", "message": "runner started"}),
        "Traceback (most recent call last):",
        '{"service": "runner", "message": "invoc',  # a cut line
        json.dumps(["not", "an", "object"]),
    ]
    assert parse_invocations(lines) == [Invocation(records=2, ms=12.5)]


def drained(committed: int, seconds: float, records_each: int) -> Drained:
    calls = [Call(ok=True, started=float(i), seconds=0.01) for i in range(committed)]
    invocations = [Invocation(records_each, 40.0)] * (committed // records_each)
    return Drained(
        LoopResult(calls, False), committed, 0.0, committed, 1.0, 1.0 + seconds, invocations
    )


def test_the_profiles_figures_set_the_sample_against_the_sandbox():
    sample_queue, sample_runner = profiles.settings(
        "guidance-sample", QueueSettings(), RunnerSettings()
    )
    rows = bench_profiles.figures(
        [
            bench_profiles.Measured(
                "sandbox", QueueSettings(), RunnerSettings(), drained(601, 10, 10), 150.0
            ),
            bench_profiles.Measured(
                "guidance-sample", sample_queue, sample_runner, drained(601, 60, 1), 125.0
            ),
        ]
    )
    by_name = {row.name: row for row in rows}
    base = by_name["sandbox: drain, first -> last commit"]
    assert base.baseline and base.value == pytest.approx(60.0) and base.versus == {}
    sample = by_name["guidance-sample: drain, first -> last commit"]
    assert sample.value == pytest.approx(10.0) and sample.versus == {
        "sandbox": pytest.approx(1 / 6)
    }
    assert "batch 1" in sample.note
    parked = by_name["guidance-sample: outage before the first order is parked"]
    assert parked.versus == {"sandbox": pytest.approx(125 / 150)}
    assert "visibility 5 s" in parked.note and "function timeout 5 s" in parked.note
    assert by_name["sandbox: outage before the first order is parked"].baseline
    per_invocation = by_name["guidance-sample: runner invocation, median"]
    assert "1.0 records each" in per_invocation.note


def test_without_the_baseline_the_ratios_are_unknown_not_set_against_another():
    queue, runner = profiles.settings("guidance-sample", QueueSettings(), RunnerSettings())
    sample = bench_profiles.Measured("guidance-sample", queue, runner, drained(11, 1, 1), 125.0)
    rows = bench_profiles.figures([sample])
    assert all(row.versus == {"sandbox": None} for row in rows if row.versus)
    assert not any(row.baseline for row in rows)


def drill_report(rto: float, p50: float, lost: int = 0) -> drill.DrillReport:
    def path(name: str) -> drill.PathReport:
        return drill.PathReport(
            path=name, sent=100, accepted=100, client_errors=0, errors_from_s=None,
            errors_to_s=None, committed_once=100 - lost, duplicates=0, in_dlq=0, queued=0,
            lost=lost, rpo_seconds=0.0, errored_but_committed=0,
            latency_ms={"p50": p50, "p95": 2 * p50, "p99": 3 * p50},
        )  # fmt: skip

    return drill.DrillReport(
        fault="crash", count=100, rate=50, replication="sync", started=0.0, fault_at=1.0,
        recovered_at=1.0 + rto, rto_seconds=rto, peak_queue_depth=10, drain_seconds=1.0,
        redriven=0, paths=[path("queue"), path("direct")],
    )  # fmt: skip


def test_docker_stats_amounts_are_read_in_mib():
    assert bench_runtimes.mib("91.2MiB ") == pytest.approx(91.2)
    assert bench_runtimes.mib(" 1.5GiB") == pytest.approx(1536)
    assert bench_runtimes.mib("512KiB") == pytest.approx(0.5)
    assert bench_runtimes.mib("0B") == 0
    with pytest.raises(ValueError, match="not a docker stats amount"):
        bench_runtimes.mib("--")


def test_the_compose_stack_is_set_against_the_native_one_and_the_cold_build_the_warm():
    native = bench_runtimes.Measured("native", 10.0, 400.0, drill_report(1.0, 50.0))
    composed = bench_runtimes.Measured("compose", 15.0, 500.0, drill_report(2.0, 100.0), 800.0)
    rows = {f.name: f for f in bench_runtimes.figures({"cold": 180, "warm": 2}, [native, composed])}
    assert rows["image build, warm (cached layers)"].baseline
    assert rows["image build, cold (--no-cache)"].versus == {"warm build": pytest.approx(90)}
    assert rows["native: up, every server answering"].baseline
    assert rows["compose: up, every server answering"].versus == {"native": pytest.approx(1.5)}
    assert rows["compose: stack memory idle (PSS)"].versus == {"native": pytest.approx(1.25)}
    assert rows["compose: crash drill RTO"].versus == {"native": pytest.approx(2)}
    assert rows["compose: queued path latency p99"].value == 300
    assert rows["compose: queued path latency p99"].versus == {"native": pytest.approx(2)}
    assert rows["compose: queued path latency p99"].note == "100/100 committed once, 0 lost"
    stats_row = rows["compose: stack memory idle (docker stats)"]
    assert stats_row.versus == {"native PSS": pytest.approx(2)}
    assert "native: stack memory idle (docker stats)" not in rows


def test_the_soak_judges_growth_per_process_not_across_a_restart():
    """A restarted process that starts bigger is no leak; one that grows over its life is."""
    minute = 60.0
    samples = [
        (
            i * minute,
            {"api": (10 if i < 5 else 11, 50.0 if i < 5 else 70.0), "cp": (20, 50.0 + i * 2)},
        )
        for i in range(16)
    ]
    assert soak.leaks(samples) == [("cp", 20, pytest.approx(0.6), 15.0)]
    lives = soak.lifetimes(samples)
    assert lives["api"] == [(i * minute, 70.0) for i in range(5, 16)]  # the last process only
    assert len(lives["cp"]) == 16
    short = [(i * minute, {"cp": (20, 50.0 + i * 10)}) for i in range(5)]  # under 10 min
    assert soak.leaks(short) == []
    starting = [(0.0, {"cp": (20, 50.0)})] + [  # a new process, looked at mid-start first
        (i * minute, {"cp": (21, 20.0 if i == 1 else 60.0)}) for i in range(1, 13)
    ]
    assert soak.leaks(starting) == []
