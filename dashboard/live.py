"""The live part of the page, redrawn about once a second by a fragment: only it reruns, so the
sidebar's inputs and the rest of the page stay put and nothing flickers."""

from __future__ import annotations

import streamlit as st

from dashboard import architecture, charts, controls, dlq_view, jobs, panels
from dashboard.snapshot import take
from sandbox.platform.state import NotRunning, load
from sandbox.spec.alarms import METRICS_INTERVAL_SECONDS

REFRESH_SECONDS = 1.0


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
    st.graphviz_chart(architecture.dot(snapshot), width="stretch")
    panels.headline(snapshot)
    left, right = st.columns(2)
    with left:
        st.subheader("Queue and DLQ depth")
        st.caption(
            f"from CloudWatch, as SQS reports it every {METRICS_INTERVAL_SECONDS} s; events marked"
        )
        chart = charts.depth(snapshot.depths, snapshot.events, snapshot.taken)
        st.altair_chart(chart, width="stretch")
    with right:
        st.subheader("Orders per second")
        st.caption("accepted and errors: the traffic started here; committed: every order")
        st.altair_chart(
            charts.throughput(
                snapshot.traffic, snapshot.committed, snapshot.events, snapshot.taken
            ),
            width="stretch",
        )
    left, right = st.columns([2, 3])
    with left:
        st.subheader("Replication")
        panels.replication(snapshot)
        st.subheader("Errors by kind")
        panels.errors(snapshot)
        st.subheader("Components")
        panels.components(snapshot)
    with right:
        st.subheader("RPO scoreboard (current or last drill)")
        panels.scoreboard(snapshot.drill)
    st.subheader("Dead-letter queue")
    dlq_view.show(state, snapshot, busy=current is not None and current.running)
