"""An outage that ends on an event (`sandbox.standins.aurora.cluster.Until`): it lasts until the
event, and a bound turns an event that never comes into an error that names it."""

from __future__ import annotations

from sandbox.standins.aurora.cluster import Until, wait_out


def test_the_outage_lasts_until_the_event_and_no_longer():
    checks: list[int] = []

    def happened() -> bool:
        checks.append(1)
        return len(checks) == 3

    assert wait_out(Until(happened, "the third check", bound=60, interval=0)) is None
    assert len(checks) == 3


def test_an_event_that_never_comes_is_an_error_naming_it():
    outage = Until(lambda: False, "every queued message had moved to the DLQ", bound=0, interval=0)
    assert wait_out(outage) == (
        "the outage ended at its bound of 0 s before every queued message had moved to the DLQ"
    )


def test_a_check_that_fails_means_not_yet_and_is_named_at_the_bound():
    answers = iter([ConnectionError("LocalStack is not answering"), True])

    def happened() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_out(Until(happened, "the event", bound=60, interval=0)) is None

    def broken() -> bool:
        raise ConnectionError("LocalStack is not answering")

    missed = wait_out(Until(broken, "the event", bound=0, interval=0))
    assert missed == (
        "the outage ended at its bound of 0 s before the event "
        "(last check failed: LocalStack is not answering)"
    )
