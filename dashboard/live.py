"""The live part of the page, redrawn about once a second by a fragment: only it reruns, so the
sidebar's inputs and the rest of the page stay put and nothing flickers.

Laid out for a projector (1280x720, the sidebar open): the picture, the queue's depth with its
chart and the drill's scoreboard fill the first screen (the browser test measures it); the rates,
replication, components and the DLQ's messages follow below. Each part sits in a keyed container
(`st-key-<key>` in the page) that the browser test finds it by."""

from __future__ import annotations

import streamlit as st

from dashboard import architecture, charts, controls, dlq_view, jobs, panels
from dashboard.snapshot import take
from sandbox.platform.state import NotRunning, load
from sandbox.spec.alarms import METRICS_INTERVAL_SECONDS

REFRESH_SECONDS = 1.0
#: The charts' column and the scoreboard's: the scoreboard's path lines whole on one line each.
COLUMNS = [4, 6]


@st.fragment(run_every=REFRESH_SECONDS)
def page() -> None:
    try:
        state = load()
    except NotRunning as error:
        st.warning(f"No stack is running: run `make up` ({error}).")
        return
    current = jobs.current()  # before the snapshot: a job seen done has saved its report
    snapshot = take(state)
    controls.notice()
    panels.job(current)
    if snapshot.problems:
        st.caption(
            "Unavailable right now: "
            + "; ".join(f"{source} ({why})" for source, why in snapshot.problems.items())
        )
    with st.container(key="picture"):
        st.graphviz_chart(architecture.dot(snapshot), width="stretch")
    left, right = st.columns(COLUMNS, gap="medium")
    with left, st.container(key="depth", gap="xsmall"):
        panels.now(snapshot)
        st.altair_chart(
            charts.depth(snapshot.depths, snapshot.events, snapshot.taken),
            width="stretch",
        )
        st.caption(
            f"Queue and DLQ depth from CloudWatch, as SQS reports it every "
            f"{METRICS_INTERVAL_SECONDS} s; events marked"
        )
    with right, st.container(key="scoreboard", gap="xsmall"):
        panels.scoreboard(snapshot.drill, snapshot.background)
    left, right = st.columns(COLUMNS, gap="medium")
    with left, st.container(key="rates", gap="xsmall"):
        st.altair_chart(
            charts.throughput(
                snapshot.traffic, snapshot.committed, snapshot.events, snapshot.taken
            ),
            width="stretch",
        )
        st.caption(
            "Orders per second: accepted and errors, of the traffic started here; committed, "
            "of every order"
        )
    with right:
        with st.container(key="replication"):
            st.subheader("Replication")
            panels.replication(snapshot)
        st.subheader("Errors by kind")
        panels.errors(snapshot)
    with st.container(key="components"):
        st.subheader("Components")
        panels.components(snapshot)
    st.subheader("Dead-letter queue")
    dlq_view.show(state, snapshot, busy=current is not None and current.running)
