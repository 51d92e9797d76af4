"""A button's callback runs once per click, even when Streamlit delivers the click again.

Streamlit stops a run straight after its callbacks when a refresh comes in meanwhile, and hands
the click to the next run, which calls the callback again (seen in the real-browser test on a
busy machine: "Stop traffic" stopped the traffic, then answered "no traffic was running").
"""

from __future__ import annotations

from typing import Any

import pytest

from dashboard import controls


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {}
    monkeypatch.setattr(controls.st, "session_state", state)
    monkeypatch.setattr(controls, "load", lambda: "the stack")
    return state


def test_a_click_delivered_again_before_the_script_ran_acts_once(session):
    calls: list[str] = []

    def stop(state: str) -> str:
        calls.append(state)
        return f"stopped ({len(calls)})"

    controls._act("stop traffic", stop)
    controls._act("stop traffic", stop)  # the same click, again, in the next run's callbacks
    assert calls == ["the stack"]
    assert session["notice"] == ("success", "stopped (1)")  # the first answer stays


def test_a_click_after_the_script_ran_acts_again(session):
    calls: list[str] = []
    controls._act("send one poison order", lambda state: calls.append(state) or "sent")
    controls.clicks_done()  # the page's script ran: that click is over
    controls._act("send one poison order", lambda state: calls.append(state) or "sent")
    assert len(calls) == 2


def test_another_button_is_another_click(session):
    done: list[str] = []
    controls._act("start traffic", lambda state: done.append("start") or "started")
    controls._act("fail over", lambda state: done.append("failover") or "failing over")
    assert done == ["start", "failover"]
