"""A button's callback acts once per click and its notice stays, however Streamlit reruns.

Streamlit may stop a run at any read or write of ``st.session_state`` for a newer request, and
deliver a click whose callback it stopped to the next run again (seen in the real-browser test on
a busy machine: "Stop traffic" stopped the traffic, then answered "no traffic was running").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dashboard import clicks, controls, panels


@pytest.fixture(autouse=True)
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(clicks, "_session", lambda: "one browser tab")
    monkeypatch.setattr(controls, "load", lambda: "the stack")
    yield
    clicks.forget()


def test_a_click_delivered_again_before_the_script_ran_acts_once():
    calls: list[str] = []

    def stop(state: str) -> str:
        calls.append(state)
        return f"stopped ({len(calls)})"

    controls._act("stop traffic", stop)
    controls._act("stop traffic", stop)  # the same click, again, in the next run's callbacks
    assert calls == ["the stack"]
    assert clicks.notice() == ("success", "stopped (1)")  # the first answer stays


def test_a_click_after_the_script_ran_acts_again():
    calls: list[str] = []
    controls._act("send one poison order", lambda state: calls.append(state) or "sent")
    clicks.done()  # the page's script ran: that click is over
    controls._act("send one poison order", lambda state: calls.append(state) or "sent")
    assert len(calls) == 2


def test_another_button_is_another_click():
    done: list[str] = []
    controls._act("start traffic", lambda state: done.append("start") or "started")
    controls._act("stop traffic", lambda state: done.append("stop") or "stopped")
    assert done == ["start", "stop"] and clicks.notice() == ("success", "stopped")


def test_a_callback_that_streamlit_stopped_before_it_acted_acts_when_delivered_again():
    class Stopped(BaseException):  # what Streamlit raises at a yield point (not an Exception)
        pass

    def stopped_early(state: str) -> str:
        raise Stopped

    with pytest.raises(Stopped):
        controls._act("fail over", stopped_early)
    controls._act("fail over", lambda state: "failing over")  # delivered again: it acts
    assert clicks.notice() == ("success", "failing over")


def test_a_failed_action_says_why_in_one_line():
    def refuse(state: str) -> str:
        raise RuntimeError("traffic is already running: stop it first")

    controls._act("start traffic", refuse)
    assert clicks.notice() == (
        "error",
        "start traffic failed: traffic is already running: stop it first",
    )


def test_two_clicks_delivered_again_together_each_act_once():
    done: list[str] = []
    controls._act("start traffic", lambda state: done.append("start") or "started")
    controls._act("send one poison order", lambda state: done.append("poison") or "sent")
    controls._act("start traffic", lambda state: done.append("start") or "started")  # again
    assert done == ["start", "poison"]


def test_only_the_newest_sessions_are_remembered(monkeypatch):
    for index in range(clicks.MAX_SESSIONS + 5):
        monkeypatch.setattr(clicks, "_session", lambda index=index: f"tab {index}")
        controls._act("stop traffic", lambda state: "stopped")
    assert len(clicks._notices) == len(clicks._acted) == clicks.MAX_SESSIONS
    assert clicks.notice() == ("success", "stopped")  # the newest tab's


def test_an_action_that_started_a_job_clears_the_last_notice():
    """The job panel shows a job's progress: the previous action's notice must not stay."""
    controls._act("stop traffic", lambda state: "stopped")
    controls._act("start a drill", lambda state: object())  # a job, not a line
    assert clicks.notice() is None


def test_the_session_acting_now_is_never_the_one_forgotten(monkeypatch):
    monkeypatch.setattr(clicks, "_session", lambda: "the host's tab")
    controls._act("fail over", lambda state: "failing over")
    for index in range(clicks.MAX_SESSIONS - 1):
        monkeypatch.setattr(clicks, "_session", lambda index=index: f"tab {index}")
        controls._act("stop traffic", lambda state: "stopped")
    monkeypatch.setattr(clicks, "_session", lambda: "the host's tab")
    controls._act("send one poison order", lambda state: "sent")  # its oldest entry, renewed
    monkeypatch.setattr(clicks, "_session", lambda: "one tab more")
    controls._act("stop traffic", lambda state: "stopped")  # past the limit: the oldest goes
    assert "the host's tab" in clicks._acted and "tab 0" not in clicks._acted


def test_the_page_says_how_many_orders_the_journal_restored_and_nothing_before():
    restored = panels.restored
    assert restored({}) is None and restored({"restored_with_localstack": 0}) is None
    said = restored({"restored_with_localstack": 12})
    assert said is not None and "12 acknowledged order(s) restored" in said
