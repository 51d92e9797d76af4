"""The page's read-only parts, with and without a stack, and with a component down."""

from __future__ import annotations

import time
import uuid

import pandas as pd
import pyarrow as pa
from streamlit.testing.v1 import AppTest

from sandbox import stack
from sandbox.ops import load
from sandbox.platform.state import StackState
from sandbox.standins import cloudwatch
from tests.conftest import wait_drained, wait_for
from tests.dashboard.conftest import click, notices, open_page


def graph(at: AppTest) -> str:
    (chart,) = at.get("graphviz_chart")
    return chart.proto.spec


def table(at: AppTest, column: str):
    """The page's table that has ``column`` (static tables: `dashboard.panels.table`)."""
    return next(frame.value for frame in at.table if column in frame.value.columns)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_without_a_stack_the_page_says_to_run_make_up(tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_RUN_DIR", str(tmp_path))
    at = open_page()
    assert not at.exception
    assert any("run `make up`" in text for text in notices(at))
    assert not at.sidebar.button, "no actions without a stack"


def test_the_page_shows_every_component_the_roles_and_the_queues(page: AppTest):
    assert not page.exception
    spec = graph(page)
    for box in ("client", "gateway", "producer", "queue", "dlq", "consumer", "proxy"):
        assert f"  {box} [" in spec
    assert 'n1 [label="n1 writer\\n' in spec and 'n2 [label="n2 reader\\n' in spec
    # (the second row is drawn right to left: each edge written backwards, dir=back)
    assert 'n1 -> proxy [dir=back, label="writes"' in spec
    assert 'n2 -> n1 [dir=back, label="replication"' in spec
    assert spec.count(" committed here") == 2, "each node says how many orders it committed"
    assert "DOWN" not in spec, spec
    assert metric(page, "queue depth") == "0" and metric(page, "DLQ") == "0"
    replication, components = table(page, "role"), table(page, "component")
    assert replication.set_index("node")["role"].to_dict() == {"n1": "writer", "n2": "reader"}
    assert replication.set_index("node")["replication"]["n2"] == "streaming / sync"
    assert set(components["component"]) == {c.name for c in stack.components()}
    assert set(components["health"]) == {"up"}
    depth, throughput = (chart.proto.spec for chart in page.get("vega_lite_chart"))
    assert '"messages"' in depth and '"per second"' in throughput


def depth_rows(at: AppTest) -> pd.DataFrame:
    """The depth chart's data (Streamlit sends it beside the spec, as Arrow; events marked on
    the chart are a second dataset)."""
    chart = next(c for c in at.get("vega_lite_chart") if '"messages"' in c.proto.spec)
    frames = [pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets]
    return next(frame for frame in frames if "messages" in frame.columns)


def test_a_backlog_from_before_the_page_opened_is_on_its_depth_chart(live: StackState):
    """The history is the stack's (its CloudWatch), not the page's: orders held while no page
    was open, and drained since, are still on the chart of a page opened afterwards."""
    prefix, count = f"hist-{uuid.uuid4().hex[:6]}", 30
    stack.stop(live, "consumer")
    try:
        sent = load.send_orders(live, count, 50, prefix=prefix)
        assert sum(s.accepted for s in sent) == count
        wait_for(
            lambda: any(s["visible"] >= count for s in cloudwatch.depths(live, 60, time.time())),
            f"CloudWatch reporting {count} orders waiting in the queue",
        )
    finally:
        stack.start(live, "consumer")
    wait_drained(live, prefix, count)
    page = open_page()
    assert not page.exception, page.exception
    rows = depth_rows(page)
    visible = rows[rows["series"] == "visible"]["messages"]
    assert visible.max() >= count, rows.tail(30)


def test_a_component_that_is_down_is_shown_down_and_its_action_fails_readably(
    live: StackState, page: AppTest
):
    stack.kill(live, "api")
    try:
        page.run()
        assert not page.exception
        assert 'gateway [label="gateway\\nAPI Gateway\\n+ Cognito\\nDOWN"' in graph(page)
        components = table(page, "component").set_index("component")
        assert components["health"]["api"] == "DOWN"
        click(page, "poison")
        (error,) = page.error
        # the CLI's sentence (`Sent.unanswered`): what happened, and what to run about it
        assert error.value.startswith(f"send one poison order failed: the API at {live.api_url}")
        assert "the order was not sent" in error.value and "`make up` repairs it" in error.value
        assert "Traceback" not in error.value
    finally:
        stack.start(live, "api")
    page.run()
    assert "DOWN" not in graph(page)
