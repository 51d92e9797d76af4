"""A chaos run started from the page: a short one, its faults marked on the charts by name."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from sandbox.drills import chaos
from sandbox.platform.state import StackState
from tests.dashboard.conftest import click, notices, wait_page


def test_a_short_chaos_run_from_the_page_accounts_for_every_order(live: StackState, page: AppTest):
    assert "dashboard-killed" not in page.multiselect(key="chaos_kinds").options
    page.multiselect(key="chaos_kinds").set_value([]).run()
    click(page, "chaos")
    assert [e.value for e in page.error] == [
        "start chaos run failed: no fault kinds to choose from"
    ]
    page.multiselect(key="chaos_kinds").set_value(["proxy-killed"]).run()
    page.number_input(key="chaos_minutes").set_value(0.5).run()
    page.number_input(key="chaos_interval").set_value(10.0).run()
    page.number_input(key="chaos_seed").set_value(3).run()
    click(page, "chaos")
    assert any(text.startswith("Running: chaos (seed 3, 0.5 min") for text in notices(page))
    wait_page(
        page,
        lambda at: any(t.startswith("chaos (seed 3") and "took" in t for t in notices(at)),
        "the chaos run's end",
    )
    (done,) = page.success
    assert "2 fault(s)" in done.value and " 0 lost, 0 duplicates" in done.value, done.value
    report = chaos.last(live)
    assert report is not None and report["status"] == "done" and report["ok"]
    charts = page.get("vega_lite_chart")
    assert charts and all(names(chart, "proxy-killed") for chart in charts), "named on the charts"


def names(chart, text: str) -> bool:
    """The chart says ``text``: in its spec, or in the data Streamlit sends beside it (Arrow)."""
    sent = [chart.proto.data.data, *(named.data.data for named in chart.proto.datasets)]
    return text in chart.proto.spec or any(text.encode() in data for data in sent)
