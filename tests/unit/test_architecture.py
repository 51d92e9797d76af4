"""The dashboard's picture says where the orders are: on the queues and on each node."""

from __future__ import annotations

from dashboard.architecture import dot
from dashboard.snapshot import Snapshot


def snapshot(nodes: dict) -> Snapshot:
    status = {
        "writer": "n2",
        "readers": ["n1"],
        "replication": "sync",
        "nodes": nodes,
        "queues": {"queue": {"visible": 7, "in_flight": 3}, "dlq": {"visible": 1, "in_flight": 0}},
        "components": [],
    }
    return Snapshot(0.0, status, None, None, [], None)


def test_each_node_shows_what_it_committed_and_the_queues_what_they_hold():
    spec = dot(
        snapshot(
            {
                "n1": {"role": "reader", "up": True, "state": "streaming", "committed": 1200},
                "n2": {"role": "writer", "up": True, "committed": 34},
            }
        )
    )
    assert 'n1 [label="n1 reader\\nstreaming\\n1,200 committed here"' in spec
    assert 'n2 [label="n2 writer\\nsync\\n34 committed here"' in spec
    assert "7 visible, 3 in flight" in spec and "DLQ\\n1 visible, 0 in flight" in spec


def test_unknown_counts_are_left_out_not_shown_as_zero():
    spec = dot(snapshot({"n1": {"role": "reader", "up": False}, "n2": {"role": "writer"}}))
    assert "committed here" not in spec


def test_the_proxy_writes_to_the_writer_and_the_writer_replicates_to_the_reader():
    """After a failover (n2 the writer) the arrows follow the roles, not the names; they are
    written backwards so that the picture's second row runs right to left."""
    nodes = {"n1": {"role": "reader", "up": True}, "n2": {"role": "writer", "up": True}}
    spec = dot(snapshot(nodes))
    assert 'n2 -> proxy [dir=back, label="writes"' in spec
    assert 'n1 -> n2 [dir=back, label="replication"' in spec
    assert "n1 -> proxy" not in spec
    assert "{ rank=same; consumer; proxy; n1; n2; }" in spec
