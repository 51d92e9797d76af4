"""The sidebar: every action the workshop takes, each a button calling `dashboard.actions`.

Buttons use callbacks, which run before the rerun, so the page that follows already shows the
action's effect; each callback reads its inputs from the session when clicked (not the values
the page had when it was drawn) and loads the state afresh, as a CLI command would.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard import actions, clicks
from dashboard.jobs import Job
from sandbox.drills.drill import faults_on
from sandbox.ops import traffic
from sandbox.platform.state import StackState, load
from sandbox.spec.choices import FAILOVER_MODES, PATHS

Action = Callable[[StackState], "str | Job"]


def sidebar(state: StackState) -> None:
    with st.sidebar:
        _traffic()
        _failover()
        _drill(state)
        _chaos(state)
        _dlq()


def notice() -> None:
    """The last action's outcome, until the next action."""
    kind, text = clicks.notice() or (None, "")
    if kind == "error":
        st.error(text)
    elif kind == "success":
        st.success(text)


def _act(label: str, action: Action) -> None:
    clicks.act(label, lambda: action(load()))


def _button(label: str, key: str, action: Action, **options: object) -> None:
    st.button(label, key=key, on_click=_act, args=(label.lower(), action), **options)


def _traffic() -> None:
    st.header("Traffic")
    st.number_input("rate (orders/s)", 1.0, traffic.MAX_RATE, 20.0, 5.0, key="traffic_rate")
    st.number_input("stop after (s)", 10.0, traffic.MAX_SECONDS, 600.0, 60.0, key="traffic_for")
    left, right = st.columns(2)
    with left:
        _button("Start traffic", "traffic_start", _start_traffic, type="primary")
    with right:
        _button("Stop traffic", "traffic_stop", actions.stop_traffic)
    _button("Send one poison order", "poison", actions.send_poison)


def _start_traffic(state: StackState) -> str:
    session = st.session_state
    return actions.start_traffic(state, session["traffic_rate"], session["traffic_for"])


def _failover() -> None:
    st.header("Failover")
    st.selectbox("mode", FAILOVER_MODES, key="failover_mode")
    st.number_input("outage (s)", 0.0, 600.0, 0.0, 5.0, key="failover_outage")
    st.number_input(
        "reader lag before a crash (s)",
        0.0,
        60.0,
        0.0,
        1.0,
        key="failover_lag",
        help="The reader first stops receiving WAL this long. Async replication: those "
        "seconds' acknowledged commits are lost. Sync: the writer waits, nothing is lost.",
    )
    left, right = st.columns(2)
    with left:
        _button("Fail over", "failover", _fail_over, type="primary")
    with right:
        _button("Fail back", "failback", actions.fail_back)
    _button(
        "Kill the writer (as a crash would)",
        "kill_writer",
        actions.kill_writer,
        help="SIGKILL to the writer's processes, nothing else: no failover is asked for. "
        "Watch the control plane notice, fence, promote and rejoin by itself.",
    )


def _fail_over(state: StackState) -> Job:
    session = st.session_state
    return actions.fail_over(
        state, session["failover_mode"], session["failover_outage"], session["failover_lag"]
    )


def _drill(state: StackState) -> None:
    st.header("Drill")
    possible = faults_on(state.runtime)  # as the page was drawn: the runtime never changes
    st.selectbox("fault", possible, index=possible.index("crash"), key="drill_fault")
    st.selectbox("path", PATHS, index=PATHS.index("both"), key="drill_path")
    st.number_input("orders per path", 1, 100_000, 300, 100, key="drill_count")
    st.number_input("rate per path (orders/s)", 1.0, 2000.0, 50.0, 10.0, key="drill_rate")
    _button("Run drill", "drill", _run_drill, type="primary")


def _run_drill(state: StackState) -> Job:
    session = st.session_state
    return actions.run_drill(
        state,
        session["drill_fault"],
        session["drill_path"],
        int(session["drill_count"]),
        session["drill_rate"],
    )


def _chaos(state: StackState) -> None:
    st.header("Chaos")
    st.caption(
        "Traffic and an unannounced fault every interval, drawn at random (the seed repeats "
        "a run); each marked on the charts. Then every order accounted for."
    )
    possible = actions.chaos_kinds(state)  # as the page was drawn: the runtime never changes
    st.multiselect("faults to draw from", possible, default=list(possible), key="chaos_kinds")
    st.number_input("minutes", 0.5, actions.CHAOS_MAX_MINUTES, 3.0, 0.5, key="chaos_minutes")
    st.number_input("seconds between faults", 10.0, 300.0, 30.0, 5.0, key="chaos_interval")
    st.number_input("orders/s during the run", 1.0, 100.0, 20.0, 5.0, key="chaos_rate")
    st.number_input("seed", 0, 1_000_000, 1, 1, key="chaos_seed")
    _button("Start chaos run", "chaos", _run_chaos, type="primary")


def _run_chaos(state: StackState) -> Job:
    session = st.session_state
    return actions.run_chaos(
        state,
        session["chaos_minutes"],
        session["chaos_rate"],
        session["chaos_interval"],
        int(session["chaos_seed"]),
        list(session["chaos_kinds"]),
    )


def _dlq() -> None:
    st.header("Dead-letter queue")
    _button("Add the parked orders' customers (the fix)", "add_customer", actions.fix_parked)
    _button("Redrive the DLQ", "redrive", actions.redrive)
    sure = st.checkbox("I am sure: delete every DLQ message", key="purge_confirm")
    _button("Purge the DLQ", "purge", _purge, disabled=not sure)


def _purge(state: StackState) -> str:
    st.session_state["purge_confirm"] = False  # one confirmation, one purge
    return actions.purge(state)
