"""The chaos matrix: each fault on the queued path with 1,000 orders around it loses nothing.

Every figure is counted from the drill's own ledger against the database, the queue and the DLQ.
"""

from __future__ import annotations

import pytest

from sandbox.drills import drill
from sandbox.drills.targets.local import LAG_COMMITS
from sandbox.standins.aurora import database

# lagging-crash: the reader stops receiving WAL until commits wait for it, then the writer
# crashes; with the default synchronous replication nothing acknowledged is lost.
FAULTS = ["crash", "switchover", "hang", "proxy-restart", "consumer-crash", "lagging-crash"]


def assert_nothing_lost(report: drill.DrillReport) -> None:
    (queue,) = report.paths
    assert queue.path == "queue"
    assert queue.balanced
    assert queue.sent == 1000
    assert queue.accepted == 1000, "the queued path acknowledges every order, fault or not"
    assert queue.lost == 0
    assert queue.duplicates == 0
    assert queue.queued == 0
    assert queue.in_dlq == 0
    assert queue.committed_once == 1000


@pytest.mark.parametrize("fault", FAULTS)
def test_queued_path_loses_nothing(live, fault):
    report = drill.run(live, fault, "queue", count=1000, rate=100)
    assert report.fault_at is not None and report.recovered_at is not None
    assert_nothing_lost(report)
    assert report.rto_seconds is not None


def test_an_outage_longer_than_the_retry_budget_parks_everything_then_redrive_commits_it(live):
    report = drill.run(live, "long-outage", "queue", count=1000, rate=100)
    assert report.redriven > 0, "the outage outlasted the retry budget: messages hit the DLQ"
    assert_nothing_lost(report)


def test_async_crash_on_the_direct_path_is_accounted_for(live):
    database.set_replication(live, "async")
    live.save()
    try:
        report = drill.run(live, "crash", "direct", count=1000, rate=100)
    finally:
        database.set_replication(live, "sync")
        live.save()
    (direct,) = report.paths
    # A loss may or may not happen in a given run; the books must balance either way.
    assert direct.sent == 1000
    assert direct.accepted + direct.client_errors == direct.sent
    assert direct.committed_once + direct.duplicates + direct.lost == direct.accepted
    assert direct.in_dlq == 0 and direct.queued == 0
    assert report.replication == "async"


def test_a_lagging_reader_promoted_under_async_replication_loses_acknowledged_writes(live):
    """The other side of the proof: the drill finds a real loss when there is one. The reader
    receives nothing while an asynchronous writer acknowledges commits on both paths (until each
    path has committed `LAG_COMMITS` of them, however long that takes on this machine); promoting
    it loses them, and the old writer's rewind discards them. The queue cannot help: the
    consumer's commit was acknowledged, so its message was deleted."""
    database.set_replication(live, "async")
    live.save()
    try:
        report = drill.run(live, "lagging-crash", "both", count=1200, rate=100)
    finally:
        database.set_replication(live, "sync")
        live.save()
    assert report.replication == "async"
    for path in report.paths:
        assert path.balanced
        assert path.lost >= LAG_COMMITS, f"{path.path}: the lag's commits were not lost"
        assert path.duplicates == 0 and path.in_dlq == 0 and path.queued == 0
    assert database.is_streaming(live, live.readers[0].name), "the old writer rejoined"


def test_both_paths_side_by_side(live, tmp_path):
    report = drill.run(live, "crash", "both", count=300, rate=60)
    assert [p.path for p in report.paths] == ["queue", "direct"]
    assert all(p.balanced for p in report.paths)
    queue, direct = report.paths
    assert queue.lost == 0 and queue.committed_once == queue.accepted == 300
    assert direct.lost == 0  # synchronous replication: an acknowledged direct write survives
    saved = drill.last(live)
    assert saved["status"] == "done" and saved["paths"][0]["accepted"] == 300


def test_the_demo_shows_the_contrast_the_guidance_demo_shows(live):
    """`make demo`: the guidance's client (5 s timeout, no retry) through a 20 s failover. The
    direct path's requests held past 5 s fail; the queued path acknowledges and stores every
    one. Counted, and the guidance's own check computed beside the account."""
    d = drill.DEMO
    report = drill.run(live, d.fault, d.path, d.count, d.rate, d.outage, client=d.client)
    queue, direct = report.paths
    assert report.client.timeout == 5.0 and report.client.retries == 0
    assert queue.balanced and direct.balanced
    assert (queue.sent, queue.lost, queue.duplicates) == (900, 0, 0)
    # Every request is queued and committed, answered within the client's 5 s or not: the queued
    # path never waits on the database, but on a loaded machine an answer can still take 5 s.
    assert queue.committed_once == queue.accepted and queue.rows_written == 900
    assert queue.errored_but_committed == queue.client_errors and queue.guidance_check
    assert direct.client_errors > 0, "requests held through a 20 s outage outlast a 5 s client"
    assert direct.lost == 0  # what the direct path fails, it never acknowledged
    assert direct.rows_written == direct.accepted + direct.errored_but_committed
