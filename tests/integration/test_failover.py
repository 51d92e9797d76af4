"""Failover, rejoin and failback of the Aurora stand-in, checked on the real nodes and proxy."""

from __future__ import annotations

import psycopg
import pytest

from sandbox.ops import failover
from sandbox.standins.aurora import database, events


def through_proxy(live) -> str:
    """Which node answers a client that connects through PgBouncer."""
    with psycopg.connect(live.proxy_dsn, autocommit=True, prepare_threshold=None) as conn:
        return conn.execute("SELECT current_setting('cluster_name')").fetchone()[0]


def assert_healthy_pair(live) -> None:
    report = database.replication_status(live)
    writer, reader = live.writer.name, live.readers[0].name
    assert report[writer]["up"] and not report[writer]["in_recovery"]
    assert report[reader]["up"] and report[reader]["in_recovery"]
    assert report[reader]["state"] == "streaming"
    assert report[reader]["sync"] == ("sync" if live.replication == "sync" else "async")
    assert through_proxy(live) == writer


@pytest.mark.parametrize("mode", ["crash", "switchover", "hang"])
def test_a_failover_promotes_the_reader_and_the_old_writer_rejoins(live, mode):
    old, new = live.writer.name, live.readers[0].name
    since = events.read(live)[-1]["epoch"] if events.read(live) else 0
    done = failover.failover(live, mode, outage=0.5 if mode == "hang" else 0.0)

    assert (done.old_writer, done.new_writer) == (old, new)
    assert live.writer.name == new
    assert_healthy_pair(live)
    kinds = [e["event"] for e in events.read(live, since=since)]
    assert kinds.index("failover-started") < kinds.index("failover-completed")
    assert kinds[-1] == "reader-rejoined"
    codes = {e["code"] for e in events.read(live, since=since)}
    assert {"RDS-EVENT-0073", "RDS-EVENT-0071"} <= codes


def test_failback_returns_to_the_original_layout(live):
    if live.writer.name == "n1":
        failover.failover(live, "crash")
    assert live.writer.name == "n2"
    failover.failback(live)
    assert live.writer.name == "n1"
    assert_healthy_pair(live)
    assert failover.failback(live) is None  # already there: nothing to do


def test_a_failover_needs_a_streaming_reader(live):
    with pytest.raises(ValueError, match="mode"):
        failover.failover(live, "explode")  # type: ignore[arg-type]
