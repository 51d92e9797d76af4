"""The AWS page's parts: the target it reads, the redrive in the sidebar, and the live part.

Every read is an API call on a real account (GetQueueAttributes, ReceiveMessage), so the live
part refreshes every few seconds, not every second, and peeks into the DLQ only when its depth
changes or once a minute. No traffic, failover, drill or purge: see `sidebar`.
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard import charts, clicks, controls, dlq_view, history, jobs, panels
from dashboard.errors import readable
from sandbox.drills.targets.aws import AwsTarget
from sandbox.platform.hints import command as hint

REFRESH_SECONDS = 5.0
REPEEK_SECONDS = 60.0


@st.cache_resource(show_spinner=False)
def connect(stack: str, region: str) -> AwsTarget:
    """One target per stack for this server, shared by every tab: its clients are made once and
    the stack's outputs read once (a failed read is tried again at the next refresh)."""
    return AwsTarget(stack, region)


def sidebar(target: AwsTarget) -> None:
    with st.sidebar:
        st.header("Dead-letter queue")
        st.button("Redrive the DLQ", key="redrive", on_click=_redrive, args=(target,))
        st.caption(
            "SQS's move task (StartMessageMoveTask) from the DLQ back to the queue, in the "
            "background; fix the cause first, or the messages come back here."
        )
        st.header("Not on this page")
        st.caption(
            f"Drills run from the CLI: `{hint(f'drill --target aws --stack {target.stack}')}`. "
            "A drill sends traffic through CloudFront and fails the Aurora cluster over: that "
            "is for a terminal and its report, not a button on a shared page."
        )
        st.caption(
            "No purge: on a deployed stack it deletes real orders for good, and SQS cannot undo "
            "it. If you must: `aws sqs purge-queue --queue-url <DlqUrl>`."
        )


def _redrive(target: AwsTarget) -> None:
    """Button callback: the redrive runs as a job (it can take minutes), so the page stays live
    and the job panel shows it running, then its result."""

    def redrive(job: jobs.Job) -> str:
        return f"redrove {target.redrive()} message(s) with SQS's move task"

    clicks.act("redrive the DLQ", lambda: jobs.start("DLQ redrive", redrive))  # one at a time


@st.fragment(run_every=REFRESH_SECONDS)
def page(target: AwsTarget) -> None:
    current = jobs.current()
    controls.notice()
    panels.job(current)
    try:
        queue, dlq = target.depths()
    except Exception as error:  # no credentials, stack gone, throttled: say so, keep the page
        st.error(f"{target.name}: {readable(error)}")
        return
    now = time.time()
    samples = history.add(target.name, now, (queue.visible, queue.in_flight, dlq.total))
    cells = st.columns(4)
    cells[0].metric("queue: visible", queue.visible)
    cells[1].metric("queue: in flight", queue.in_flight)
    cells[2].metric("DLQ: visible", dlq.visible)
    cells[3].metric("DLQ: in flight", dlq.in_flight)
    st.subheader("Queue and DLQ depth")
    st.caption(
        f"sampled by this page every {REFRESH_SECONDS:.0f} s, each sample two GetQueueAttributes "
        "calls; SQS's counts are approximate, and AWS says they may take a minute to settle"
    )
    st.altair_chart(charts.depth(samples, [], now), width="stretch")
    st.subheader("Dead-letter queue")
    st.caption(
        "Peeked (received, then made visible again) when the DLQ's depth changes or once a "
        "minute. receives: SQS's ApproximateReceiveCount, which counts every peek too. SQS keeps "
        'no error: the consumer logs "order failed" with the order id and the error in its '
        "CloudWatch log group."
    )
    busy = current is not None and current.running  # no peek while the move task runs
    parked = dlq_view.listing(target.dlq_messages, dlq.total, busy, REPEEK_SECONDS)
    if parked is not None:
        dlq_view.contents(parked)
