"""The scoreboard's words for a drill over background traffic, and the charts' event styles: the
page's parts drawn from a given report (no stack: `AppTest.from_function`)."""

from __future__ import annotations

import time
from typing import Any

from streamlit.testing.v1 import AppTest

from dashboard.charts import MARKED, OKABE_ITO

PATH = {
    "path": "queue",
    "sent": 300,
    "accepted": 300,
    "client_errors": 0,
    "errors_from_s": None,
    "errors_to_s": None,
    "committed_once": 300,
    "duplicates": 0,
    "in_dlq": 0,
    "queued": 0,
    "lost": 0,
    "rpo_seconds": 0.0,
    "errored_but_committed": 0,
    "latency_ms": {},
}
NOTE = "background traffic (30 orders/s) was running when the drill started: ..."
DONE = {
    "status": "done",
    "fault": "crash",
    "count": 300,
    "rate": 50.0,
    "replication": "sync",
    "started": time.time(),
    "rto_seconds": 0.5,
    "drain_seconds": 0.2,
    "peak_queue_depth": 141,
    "redriven": 0,
    "paths": [PATH],
    "notes": [NOTE],
    "background_rate": 30.0,
}


def draw(report: dict[str, Any] | None, background: float | None) -> AppTest:
    def page(report, background):  # type: ignore[no-untyped-def]  (run from its source alone)
        from dashboard import panels

        panels.scoreboard(report, background)

    at = AppTest.from_function(page, args=(report, background)).run()
    assert not at.exception, at.exception
    return at


def test_a_drill_over_background_traffic_labels_its_peak_as_counting_that_traffic():
    at = draw(DONE, None)
    figures = {m.label: m.value for m in at.metric}
    assert figures["peak + traffic"] == "141" and "peak depth" not in figures
    assert f"note: {NOTE}" in [c.value for c in at.caption], "the report's own words"
    alone = draw(DONE | {"background_rate": None, "notes": []}, None)
    assert {m.label: m.value for m in alone.metric}["peak depth"] == "141"


def test_a_running_drill_says_that_background_traffic_runs_beside_it():
    running = {"status": "running", "fault": "crash", "count": 300, "started": time.time()}
    (said,) = draw(running, 30.0).info
    assert "background traffic (30 orders/s) runs beside it" in said.value
    (alone,) = draw(running, None).info
    assert "background" not in alone.value


def test_the_marked_events_are_colour_blind_safe_and_no_two_look_alike():
    assert {colour for colour, _ in MARKED.values()} <= set(OKABE_ITO)
    styles = [(colour, tuple(dash)) for colour, dash in MARKED.values()]
    assert len(set(styles)) == len(styles), "two events drawn alike"
    together = [
        ("writer-crashed", "failover-started", "failover-completed", "reader-rejoined"),
        ("writer-lost", "writer-restarted"),
        ("reader-lost", "reader-rejoined"),
        ("service-lost", "service-restarted"),
    ]
    for kinds in together:  # drawn side by side: each differs from the others in both
        colours, dashes = zip(*(MARKED[kind] for kind in kinds), strict=True)
        assert len(set(colours)) == len(set(map(tuple, dashes))) == len(kinds), kinds
