"""The DLQ's contents (`sandbox dlq list`) and one message's body and attributes (`dlq show`),
for the local page and, through `listing` and `contents`, the AWS one.

Peeking receives every message and makes it visible again, so it is not done at every refresh:
only when the DLQ's depth changes, or every few seconds, and never while a long action (a drill
may be redriving) runs; meanwhile the page shows the last listing. Below it, locally, the orders
failing in the queue (from the consumer's log, read every few seconds while the queue holds
anything): the room sees a poison order's receive count climb before SQS parks it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pandas as pd
import streamlit as st

from dashboard import actions
from dashboard.errors import readable
from dashboard.snapshot import Snapshot
from sandbox.ops import dlq
from sandbox.ops.dlq import Failing, Parked
from sandbox.platform.state import StackState

REPEEK_SECONDS = 10.0
#: How often the consumer's log is read for the orders failing in the queue: receive counts
#: climb once a visibility timeout (6 s by default).
FAILING_SECONDS = 3.0
Peek = Callable[[], list[Parked]]


def show(state: StackState, snapshot: Snapshot, busy: bool) -> None:
    depth = snapshot.depth("dlq")
    if depth is None:
        st.caption("The DLQ cannot be read right now (LocalStack down?).")
        return
    total = depth["visible"] + depth["in_flight"]
    parked = listing(lambda: dlq.mark_fixed(state, dlq.peek(state)), total, busy)
    if parked is None:
        return
    contents(parked, lambda key: _detail(state, key, total), receives="receives before parked")
    queue = snapshot.depth("queue")
    if queue and queue["visible"] + queue["in_flight"]:
        failing(state, parked)


def failing(state: StackState, parked: list[Parked]) -> None:
    """The orders failing in the queue, not parked yet, with their receive count so far."""
    cached = st.session_state.get("dlq_failing")
    if not cached or not _fresh(cached["at"], FAILING_SECONDS):
        cached = {"at": time.time(), "failing": dlq.failing(state, parked)}
        st.session_state["dlq_failing"] = cached
    climbing: list[Failing] = cached["failing"]
    if not climbing:
        return
    limit = state.queue.max_receive_count
    st.caption(
        f"Failing in the queue, not parked yet: retried once a visibility timeout, parked by "
        f"SQS after {limit} receives (from the consumer's log)"
    )
    frame = pd.DataFrame(
        {
            "order id": [f.order_id for f in climbing],
            "receives so far": [f"{f.receives} of {limit}" for f in climbing],
            "last failed": [_clock(f.last_failed) for f in climbing],
            "last error": [f.last_error for f in climbing],
            "fix": [_fix(f.missing_customer) for f in climbing],
        }
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def listing(
    peek: Peek, total: int, busy: bool, repeek_seconds: float = REPEEK_SECONDS
) -> list[Parked] | None:
    """The DLQ's messages: peeked afresh only if its depth changed or the last peek is older
    than ``repeek_seconds``, and not while ``busy``. None (and why, on the page) if the peek
    failed."""
    cached = st.session_state.get("dlq_listing")
    if total == 0:
        fresh = {"total": 0, "at": time.time(), "parked": []}
    elif cached and (busy or (cached["total"] == total and _fresh(cached["at"], repeek_seconds))):
        return cached["parked"]
    else:
        try:
            fresh = {"total": total, "at": time.time(), "parked": peek()}
        except Exception as error:
            st.caption(f"The DLQ cannot be listed right now: {readable(error)}")
            return None
    st.session_state["dlq_listing"] = fresh
    return fresh["parked"]


def contents(
    parked: list[Parked],
    detail: Callable[[str], Parked] | None = None,
    receives: str = "receives",
) -> None:
    """The listing as a table, then one message's body and attributes: ``detail(order id)``
    reads it afresh; without it, it is taken from the listing. ``receives``: what the receive
    count is called (locally the consumer's, before SQS parked it; on AWS SQS's own, peeks
    included). "sent" is when the order was queued, not when it reached the DLQ; "fix" is shown
    when the consumer's log says which customer an order waits for."""
    if not parked:
        st.caption("The DLQ is empty.")
        return
    columns = {
        "order id": [p.order_id for p in parked],
        receives: [p.receives for p in parked],
        "sent": [_clock(p.sent) for p in parked],
        "last error": [p.last_error for p in parked],
    }
    if any(p.missing_customer is not None for p in parked):
        columns["fix"] = [
            "redrive (customer added)" if p.fixed else _fix(p.missing_customer) for p in parked
        ]
    frame = pd.DataFrame(columns)
    st.dataframe(frame, hide_index=True, width="stretch")
    key = st.selectbox("Message", [p.order_id for p in parked], key="dlq_choice")
    try:
        message = detail(key) if detail else next(p for p in parked if p.order_id == key)
    except Exception as error:  # gone meanwhile: redriven or purged from another tab
        st.caption(f"{key}: {readable(error)}")
        return
    body, attributes = st.columns(2)
    with body:
        st.caption(f"body of {message.message_id}")
        try:
            st.json(json.loads(message.body))
        except ValueError:  # not an order (sent to the DLQ by hand?): as it is
            st.code(message.body)
    with attributes:
        st.caption(
            "SQS's attributes: ApproximateReceiveCount counts every receive, each look at the "
            "DLQ (a listing) included"
        )
        st.json(message.attributes)


def _detail(state: StackState, key: str, total: int) -> Parked:
    cached = st.session_state.get("dlq_detail")
    if cached and cached["key"] == key and cached["total"] == total and _fresh(cached["at"]):
        return cached["message"]
    message = actions.dlq_message(state, key)
    st.session_state["dlq_detail"] = {
        "key": key,
        "total": total,
        "at": time.time(),
        "message": message,
    }
    return message


def _fresh(at: float, seconds: float = REPEEK_SECONDS) -> bool:
    return time.time() - at < seconds


def _fix(customer: int | None) -> str:
    return "" if customer is None else dlq.fix_command(customer)


def _clock(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%H:%M:%S", time.localtime(epoch))
