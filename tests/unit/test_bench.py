"""The benchmark's pure helpers: percentiles, ratios, loop accounting, runner log parsing."""

import contextlib
import json

import pytest

from bench.drain import Invocation, parse_invocations
from bench.loops import closed_loop
from bench.stats import latency, percentile, rate, ratio, spread


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
