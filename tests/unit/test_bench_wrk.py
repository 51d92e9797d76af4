"""bench's wrk runs without a server: what a run's summary means, and turns taken as one."""

from __future__ import annotations

from bench import wrk

NO_ERRORS = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}


def run(requests: int, seconds: float, p50: float, p99: float, status: int = 0) -> wrk.Run:
    return wrk.Run(8, requests, seconds, p50, p99, NO_ERRORS | {"status": status})


def test_a_refused_answer_is_no_part_of_the_rate():
    found = run(1000, 10.0, 2.0, 9.0, status=100)
    assert (found.rate, found.failed) == (90.0, 100)


def test_turns_add_up_their_answers_and_time_and_take_the_median_percentiles():
    turns = [run(100, 2.0, 5.0, 50.0), run(300, 2.0, 1.0, 10.0, status=4), run(200, 4.0, 3.0, 30.0)]
    whole = wrk.combined(turns)
    assert (whole.requests, whole.seconds, whole.failed) == (600, 8.0, 4)
    assert (whole.p50_ms, whole.p99_ms) == (3.0, 30.0)
    assert whole.rate == 596 / 8.0
